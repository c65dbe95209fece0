"""Label agreement across blocks: provisional IDs, pairs to merge, final numbering, renumbering.

Pure numpy functions; the pipeline does the I/O and Dask. Two paths share
:func:`number_objects`:

* seeded (exact 6-connected components): :func:`label_seeds` per write ROI,
  :func:`face_pairs` across every face (:func:`face_neighbours`);
* overlap (independent labels of each read ROI): :func:`overlap_pairs` on
  :func:`read_roi_overlap` of every face neighbour.

See ``docs/stitching.md``.
"""

from bigseg.stitch._ids import provisional_ids, split_provisional
from bigseg.stitch._numbering import Numbering, number_objects
from bigseg.stitch._overlap import overlap_pairs, read_roi_overlap
from bigseg.stitch._renumber import Renumbering
from bigseg.stitch._seeded import face_neighbours, face_pairs, face_planes, label_blockwise, label_seeds

__all__ = [
    "Numbering",
    "Renumbering",
    "face_neighbours",
    "face_pairs",
    "face_planes",
    "label_blockwise",
    "label_seeds",
    "number_objects",
    "overlap_pairs",
    "provisional_ids",
    "read_roi_overlap",
    "split_provisional",
]
