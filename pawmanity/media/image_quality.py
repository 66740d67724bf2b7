"""Is this clinical photo good enough to look at? Advice to retake it, never a diagnosis.

Blur is the variance of the Laplacian of the greyscale image (a sharp photo has strong edges, so a high variance);
exposure is the share of nearly black or nearly white pixels; size is the shorter side. Thresholds are conservative:
the point is to catch the photo a clinician would ask to have retaken.
"""

from PIL import ImageFilter, ImageStat

# A 3x3 Laplacian kernel; Pillow needs an offset so negative responses survive in 8-bit output.
LAPLACIAN = ImageFilter.Kernel((3, 3), [0, 1, 0, 1, -4, 1, 0, 1, 0], scale=1, offset=128)
ANALYSIS_SIDE = 1024          # measured on a downscaled copy: fast, and blur is judged at viewing size
BLUR_VARIANCE = 60.0
DARK_SHARE, BRIGHT_SHARE = 0.5, 0.5
MIN_SIDE = 400


def assess(image):
    factor = max(1, max(image.size) // ANALYSIS_SIDE)
    grey = (image.reduce(factor) if factor > 1 else image).convert("L")  # shrink first: a 12 MP photo costs little
    sharpness = ImageStat.Stat(grey.filter(LAPLACIAN)).var[0]
    histogram = grey.histogram()
    pixels = max(sum(histogram), 1)
    dark, bright = sum(histogram[:30]) / pixels, sum(histogram[226:]) / pixels
    advice = []
    if sharpness < BLUR_VARIANCE:
        advice.append("The photo looks blurred; hold still, tap to focus and retake it.")
    if dark > DARK_SHARE:
        advice.append("The photo is too dark; add light or move to a brighter place.")
    if bright > BRIGHT_SHARE:
        advice.append("The photo is overexposed; avoid direct light or the flash glare.")
    if min(image.size) < MIN_SIDE:
        advice.append(f"The photo is small; retake it at a higher resolution (at least {MIN_SIDE} pixels).")
    return {"sharpness": round(sharpness, 1), "dark_share": round(dark, 3), "bright_share": round(bright, 3),
            "retake": bool(advice), "advice": advice}
