"""100% crops of every shipped style: what the brush strokes look like, pixel for pixel.

    python studies/crops.py PHOTO [PHOTO ...] [--models NAME ...] [--side 160] [--out crops.jpg]

Each photo is stylized by each model at the photo's own size with the network on every pixel
(``Stylizer(work_side=None)``, fp32), and the window of the photo with the most detail (gradient
energy; :func:`studies.working_resolution.detailed_windows`) is cut from the photo and from every
result at 100%: one row per photo, the photo's crop first, then one crop per model, in the order
of ``--models`` (default: every shipped model, the default first). Nothing is resized, so a
stroke is as many pixels wide as the network painted it.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GAP = 6


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("photos", nargs="+", help="photos (cropped where they have the most detail)")
    p.add_argument("--models", nargs="+", help="model names or folders (default: every shipped model)")
    p.add_argument("--side", type=int, default=160, help="crop side in pixels (default 160)")
    p.add_argument("--out", default="crops.jpg", help="the image written (default crops.jpg)")
    return p.parse_args(argv)


def crop_row(photo, stylizers, side):
    """``[photo crop, one crop per stylizer]`` at the photo's most detailed window."""
    from studies.working_resolution import detailed_windows

    if min(photo.shape[:2]) < side:
        raise SystemExit(f"a photo of {photo.shape[1]}x{photo.shape[0]} is smaller than --side {side}")
    (y, x), = detailed_windows(photo, side, 1)
    results = [s.stylize(photo) for s in stylizers]
    return [image[y:y + side, x:x + side] for image in [photo] + results]


def main(argv=None):
    args = parse_args(argv)
    from mxstyle import io
    from mxstyle.model_folder import DEFAULT_MODEL
    from mxstyle.runtime import Stylizer, list_available_models

    names = args.models or sorted(list_available_models(), key=lambda n: (n != DEFAULT_MODEL, n))
    stylizers = [Stylizer(name, precision="fp32", work_side=None) for name in names]
    rows = [crop_row(io.read_image(path), stylizers, args.side) for path in args.photos]
    width = len(rows[0]) * (args.side + GAP) - GAP
    sheet = np.full((len(rows) * (args.side + GAP) - GAP, width, 3), 255.0, np.float32)
    for r, row in enumerate(rows):
        for c, crop in enumerate(row):
            top, left = r * (args.side + GAP), c * (args.side + GAP)
            sheet[top:top + args.side, left:left + args.side] = crop
    io.write_image(args.out, sheet, quality=92)
    print(f"{args.out}: {len(rows)} photos x (photo, {', '.join(names)}), {args.side} px crops at 100%")
    return names


if __name__ == "__main__":
    main()
