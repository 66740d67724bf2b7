"""Peak memory of cleaning one hostile upload: how much a worker grows while `media.clean` handles it.

Run from the repository root:

    .venv/bin/python bench/media_memory.py [--frames 300] [--rows 1000] [--columns 1000] [--photo]

The file (by default the deflated DICOM of issue 10: 300 frames of 1000x1000, about 285 KB) is built in this process
and written to a temporary file; a fresh child process imports the media code, warms it up on a small DICOM, resets
its peak-RSS mark (/proc/self/clear_refs), then cleans the file once with the configured per-upload cap and reports
its resident memory before and its peak (VmHWM) after, plus the outcome (accepted, or the refusal's status and code).
With --photo it does the same for a 4000x3000 JPEG, for comparison with an ordinary upload.
--json prints one JSON line (the test suite uses it); the exit status is 0 either way.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(path):
    import config
    from pawmanity.core.errors import DomainError
    from pawmanity.media import imaging
    from tests.crafted_media import deflated_dicom

    cap = {"max_samples": config.Config.UPLOAD_MAX_SAMPLES} if hasattr(config.Config, "UPLOAD_MAX_SAMPLES") \
        else {"max_pixels": config.Config.UPLOAD_MAX_PIXELS}
    imaging.clean(deflated_dicom(frames=2, rows=32, columns=32, value=9), **cap)  # imports pydicom's decoders
    with open(path, "rb") as handle:
        data = handle.read()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current RSS
    before = _status_kb("VmRSS")
    try:
        clean = imaging.clean(data, **cap)
        outcome = {"accepted": True, "content_type": clean.content_type}
    except DomainError as error:
        outcome = {"accepted": False, "status": error.status, "code": error.code}
    peak = _status_kb("VmHWM")
    return {"bytes": len(data), "rss_before_mb": round(before / 1024, 1), "peak_mb": round(peak / 1024, 1),
            "growth_mb": round((peak - before) / 1024, 1), **outcome}


def photo_bytes():
    import numpy
    from PIL import Image

    rng = numpy.random.default_rng(1)
    pixels = rng.integers(0, 255, size=(3000, 4000, 3), dtype=numpy.uint8)
    output = io.BytesIO()
    Image.fromarray(pixels).save(output, format="JPEG", quality=85)
    return output.getvalue()


def measure(data):
    with tempfile.NamedTemporaryFile(suffix=".bin") as handle:
        handle.write(data)
        handle.flush()
        result = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", handle.name],
                                capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--columns", type=int, default=1000)
    parser.add_argument("--photo", action="store_true", help="also measure a 4000x3000 JPEG")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    from tests.crafted_media import deflated_dicom

    cases = [(f"deflated DICOM {args.frames}x{args.rows}x{args.columns}",
              deflated_dicom(frames=args.frames, rows=args.rows, columns=args.columns))]
    if args.photo:
        cases.append(("JPEG 4000x3000", photo_bytes()))
    for name, data in cases:
        result = measure(data)
        if args.json:
            print(json.dumps({"case": name, **result}))
        else:
            verdict = "accepted" if result["accepted"] else f"refused {result['status']} {result['code']}"
            print(f"{name}: {result['bytes'] / 1024:.0f} KB, RSS {result['rss_before_mb']} MB -> peak "
                  f"{result['peak_mb']} MB (+{result['growth_mb']} MB), {verdict}")


if __name__ == "__main__":
    main()
