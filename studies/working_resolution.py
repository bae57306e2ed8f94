"""Working resolution against every pixel: what a 12 MP photo loses when the network runs on a
1024-pixel copy and the guided upsampler brings the result back (``Stylizer``'s default), against
the exact full-resolution tiled result (``work_side=None``). A quality study, not a test.

    python studies/working_resolution.py --photo PHOTO.jpg [--size 4000x3000] [--model NAME]
        [--out docs/images/working_resolution] [--markdown FILE] [--json FILE]

The photo is cropped to the size's aspect, resized to it (Lanczos) and written as a JPEG (quality
95), so both paths start from a file as a user's would. Written into ``--out``:

- ``crop_K.jpg``: 100% crops side by side: photo | every pixel (exact tiles) | working resolution
  + guided upsampler (the default) | working resolution + bilinear (what the upsampler replaces);
  the crops are the most detailed windows of the photo (gradient energy), at least a crop apart;
- the numbers (``--markdown`` / ``--json``): seconds of each path, and the VGG losses of each
  result measured at 512 px (``mxstyle.quality``: content relu2_2 / relu4_2 against the photo,
  style against the model's painting) with the working / full ratio, and at 100% (the crops).
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mxstyle import io  # noqa: E402

MEASURE_SIDE = 512


def parse_args(argv):
    from bench.run import parse_size

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photo", required=True, help="a large photo (JPEG, PNG, ...)")
    p.add_argument("--size", type=parse_size, default=(3000, 4000), help="WIDTHxHEIGHT (default 4000x3000)")
    p.add_argument("--model", default=None, help="model name or folder (default: the default model)")
    p.add_argument("--work-side", type=int, default=None, help="default: the runtime's DEFAULT_WORK_SIDE")
    p.add_argument("--crops", type=int, default=3, help="100%% crops to write (default 3)")
    p.add_argument("--crop-side", type=int, default=384, help="side of a crop in pixels (default 384)")
    p.add_argument("--out", default=str(ROOT / "docs" / "images" / "working_resolution"))
    p.add_argument("--vgg-weights", default="imagenet", help="VGG16 .params file (default: ImageNet, cached)")
    p.add_argument("--markdown", metavar="FILE")
    p.add_argument("--json", metavar="FILE")
    return p.parse_args(argv)


def prepare_photo(path, size, folder):
    """The photo cropped to ``size``'s aspect, resized to it, written as JPEG 95 into ``folder``."""
    import cv2

    h, w = size
    img = io.read_image(path)
    ih, iw = img.shape[:2]
    if iw * h > ih * w:  # wider than wanted: crop the width
        cw = round(ih * w / h)
        img = img[:, (iw - cw) // 2:(iw - cw) // 2 + cw]
    else:
        ch = round(iw * h / w)
        img = img[(ih - ch) // 2:(ih - ch) // 2 + ch]
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LANCZOS4 if h > img.shape[0] else cv2.INTER_AREA)
    out = Path(folder) / f"photo_{w}x{h}.jpg"
    io.write_image(out, np.clip(img, 0, 255), quality=95)
    return out


def detailed_windows(photo, side, count):
    """Top-left corners of the ``count`` windows with the most gradient energy, at least ``side``
    apart (so that no two crops overlap)."""
    import cv2

    gray = photo.mean(axis=2).astype(np.float32)
    energy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    step = side // 2
    h, w = gray.shape
    scores = [(float(energy[y:y + side, x:x + side].mean()), y, x)
              for y in range(0, h - side + 1, step) for x in range(0, w - side + 1, step)]
    chosen = []
    for score, y, x in sorted(scores, reverse=True):
        if all(abs(y - cy) >= side or abs(x - cx) >= side for cy, cx in chosen):
            chosen.append((y, x))
        if len(chosen) == count:
            break
    return chosen


def main(argv=None):
    import cv2

    from mxstyle.color import luminance_u8
    from mxstyle.evaluation import style_image_of
    from mxstyle.quality import QualityMeter, psnr
    from mxstyle.runtime import DEFAULT_WORK_SIDE, Stylizer
    from mxstyle.runtime import upsample

    args = parse_args(argv)
    work_side = args.work_side or DEFAULT_WORK_SIDE
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        jpeg = prepare_photo(args.photo, args.size, tmp)
        photo = io.read_image(jpeg)
        stylizer = Stylizer(args.model, work_side=work_side)
        print(f"{stylizer!r}; photo {photo.shape[1]}x{photo.shape[0]}", file=sys.stderr)
        results, seconds = {}, {}
        for label, ws in (("full", None), ("working", work_side)):
            t0 = time.perf_counter()
            results[label] = stylizer.stylize(jpeg, work_side=ws)
            seconds[label] = time.perf_counter() - t0
            print(f"  {label}: {seconds[label]:.2f} s", file=sys.stderr)
        small = io.resize_max_side(photo, work_side)
        styled_small = stylizer.stylize(small, work_side=None)
        results["bilinear"] = cv2.resize(styled_small, photo.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        # the same filter from a full decode and an area resize (the default path decodes the
        # working copy at reduced scale): how much the fast decode changes the result
        guided = upsample.guided_upsample(styled_small, luminance_u8(small), luminance_u8(photo))

    meter = QualityMeter(str(style_image_of(stylizer.model_dir, stylizer.card)), vgg_weights=args.vgg_weights)
    photo_512 = io.resize_max_side(photo, MEASURE_SIDE)
    losses = {label: meter(io.resize_max_side(img, MEASURE_SIDE), photo_512)
              for label, img in (("full", results["full"]), ("working", results["working"]),
                                 ("bilinear", results["bilinear"]))}
    ratios = {key: losses["working"][key] / losses["full"][key] for key in losses["full"]}

    crops = detailed_windows(photo, args.crop_side, args.crops)
    s = args.crop_side
    # the same losses at 100%: each result's crops against the photo's, averaged over the crops
    losses_100 = {label: {key: float(np.mean([meter(results[label][y:y + s, x:x + s], photo[y:y + s, x:x + s])[key]
                                              for y, x in crops])) for key in losses["full"]}
                  for label in ("full", "working", "bilinear")}
    for k, (y, x) in enumerate(crops, 1):
        panels = [photo, results["full"], results["working"], results["bilinear"]]
        row = np.concatenate([np.pad(p[y:y + s, x:x + s], ((0, 0), (0, 6), (0, 0)), constant_values=255)
                              for p in panels], axis=1)[:, :-6]
        io.write_image(out_dir / f"crop_{k}.jpg", row, quality=92)
    io.write_image(out_dir / "overview.jpg", np.concatenate(
        [io.resize_max_side(results[k], 800) for k in ("full", "working")], axis=1), quality=90)

    record = dict(model=stylizer.name, arch=stylizer.card.get("arch"), backend=stylizer.backend,
                  precision=stylizer.precision, size=[photo.shape[1], photo.shape[0]], work_side=work_side,
                  photo=Path(args.photo).name, seconds={k: round(v, 3) for k, v in seconds.items()},
                  losses_at_512=losses, working_over_full=ratios, losses_at_100_percent_crops=losses_100,
                  reduced_decode_vs_full_decode_psnr_db=round(psnr(guided, results["working"], cap=100.0), 2),
                  crops=[dict(y=int(y), x=int(x), side=s) for y, x in crops],
                  command="python studies/working_resolution.py " + " ".join(sys.argv[1:] if argv is None else argv))
    lines = [f"`{stylizer.name}` ({record['arch']}, {stylizer.backend} {stylizer.precision}), "
             f"{photo.shape[1]}x{photo.shape[0]} JPEG, work side {work_side}; losses measured at {MEASURE_SIDE} px",
             "", "| result | seconds | content relu2_2 | content relu4_2 | style |", "|---|---|---|---|---|"]
    for label, name in (("full", "every pixel (exact tiles)"), ("working", "working res. + guided upsampler"),
                        ("bilinear", "working res. + bilinear")):
        l = losses[label]
        t = f"{seconds[label]:.2f}" if label in seconds else "-"
        lines.append(f"| {name} | {t} | {l['content_relu2_2']:.4g} | {l['content_relu4_2']:.4g} | {l['style']:.4g} |")
    lines.append(f"| working / every pixel | | {ratios['content_relu2_2']:.3f} | {ratios['content_relu4_2']:.3f} "
                 f"| {ratios['style']:.3f} |")
    lines += ["", f"The same losses at 100%, the mean over the {len(crops)} crops of {s} px (each against the photo's crop):",
              "", "| result | content relu2_2 | content relu4_2 | style |", "|---|---|---|---|"]
    for label, name in (("full", "every pixel (exact tiles)"), ("working", "working res. + guided upsampler"),
                        ("bilinear", "working res. + bilinear")):
        l = losses_100[label]
        lines.append(f"| {name} | {l['content_relu2_2']:.4g} | {l['content_relu4_2']:.4g} | {l['style']:.4g} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
