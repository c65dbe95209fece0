"""Label agreement across blocks: provisional IDs, pairs to merge, final numbering, renumbering.

Pure numpy functions; the pipeline does the I/O and Dask. Two paths share
:func:`number_objects`:

* seeded (exact 6-connected components): :func:`label_seeds` per write ROI,
  :func:`face_pairs` across every face (:func:`face_neighbours`);
* iou (independent labels of each read ROI): :func:`iou_pairs` on
  :func:`shared_read_roi` of every face neighbour.

The pipeline numbers block by block (:func:`resolve_roots`, prefix sums,
:func:`local_numbering`), so no process holds every pair; :func:`number_objects`
is the same numbering in one place, for serial use and as the reference.

See ``docs/stitching.md``.
"""

from bigseg.stitch._ids import MAX_LOCAL, provisional_ids, split_provisional
from bigseg.stitch._iou import iou_pairs, shared_read_roi
from bigseg.stitch._local import local_numbering, merge_wide, owner_blocks, resolve_roots
from bigseg.stitch._numbering import Numbering, number_objects
from bigseg.stitch._renumber import Renumbering
from bigseg.stitch._seeded import face_neighbours, face_pairs, face_planes, label_blockwise, label_seeds

__all__ = [
    "MAX_LOCAL",
    "Numbering",
    "Renumbering",
    "face_neighbours",
    "face_pairs",
    "face_planes",
    "iou_pairs",
    "label_blockwise",
    "label_seeds",
    "local_numbering",
    "merge_wide",
    "number_objects",
    "owner_blocks",
    "provisional_ids",
    "resolve_roots",
    "shared_read_roi",
    "split_provisional",
]
