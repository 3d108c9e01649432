"""Figure helpers shared by the EDA and model-comparison figures.

Every figure is drawn with matplotlib's defaults on the Agg backend and saved without the
Software tag, so the PNG bytes depend on the data only: DVC sees an unchanged figure as
unchanged. matplotlib loads inside the functions, never at import.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

POSITIVE_COLOR = "tab:red"
NEGATIVE_COLOR = "tab:blue"


def pyplot() -> Any:
    """pyplot on the Agg backend: no display needed, same pixels on every machine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def style() -> Iterator[Any]:
    """Matplotlib defaults, whatever a user's matplotlibrc says, so reruns match bytes."""
    plt = pyplot()
    with plt.style.context("default"), plt.rc_context({"font.size": 9, "axes.titlesize": 10}):
        yield plt


def render_png(fig: Figure, dpi: int) -> bytes:
    """PNG bytes of ``fig`` without the Software tag (bytes depend on the data only); closes it."""
    plt = pyplot()
    buffer = io.BytesIO()
    try:
        with style():
            fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    finally:
        plt.close(fig)
    return buffer.getvalue()


def message_figure(title: str, message: str) -> Figure:
    """A text-only figure, for a topic with nothing to draw (the report keeps its slot)."""
    with style() as plt:
        fig, ax = plt.subplots(figsize=(6, 2.5))
        ax.set_axis_off()
        ax.set_title(title)
        ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, transform=ax.transAxes)
        fig.tight_layout()
    return fig


def percent(part: int, whole: int) -> str:
    """Share as text; a non-zero share never prints as 0.0%."""
    share = 100 * part / whole if whole else 0.0
    return "<0.1%" if 0 < share < 0.1 else f"{share:.1f}%"


def algo_colors(algos: Sequence[str]) -> dict[str, str]:
    """One fixed colour per algorithm, the same in every figure."""
    return {algo: f"C{i % 10}" for i, algo in enumerate(algos)}
