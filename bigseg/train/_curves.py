"""Loss and metric curves: appended to CSV as training runs, drawn to PNG."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

__all__ = ["append_rows", "plot_curves", "read_rows", "truncate_rows"]


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()} for row in csv.DictReader(fh)]


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append rows; the header is the first row's keys (later rows may not add keys)."""
    if not rows:
        return
    new = not path.is_file()
    fields = list(rows[0]) if new else list(read_header(path))
    with path.open("a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerows(rows)


def read_header(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        return next(csv.reader(fh))


def truncate_rows(path: Path, max_step: int) -> None:
    """Drop rows after ``max_step`` (a resumed run rewrites them)."""
    rows = read_rows(path)
    if not rows:
        return
    fields = read_header(path)
    keep = [r for r in rows if r["step"] <= max_step]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows([{k: (int(v) if k == "step" else v) for k, v in r.items()} for r in keep])


def plot_curves(loss_csv: Path, val_csv: Path, png: Path) -> None:
    """Loss (log scale) and validation F1/AP against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss, val = read_rows(loss_csv), read_rows(val_csv)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for key in (loss[0] if loss else {}):
        if key.startswith("loss"):
            a.plot([r["step"] for r in loss], [r[key] for r in loss], label=key, lw=1)
    a.set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
    for key in (val[0] if val else {}):
        if key.startswith(("f1@", "ap@")):
            b.plot([r["step"] for r in val], [r[key] for r in val], marker="o", label=key)
    b.set(xlabel="step", ylabel="score", ylim=(0, 1), title="validation (synthetic)")
    for ax in (a, b):
        if ax.get_lines():
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)
