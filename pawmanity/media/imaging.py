"""What an uploaded file really is, decided from its bytes, and a clean copy of it.

Images (JPEG, PNG, WebP, HEIC) are fully decoded once with Pillow: decompression bombs are refused, the EXIF
orientation is applied and every piece of metadata (GPS included) is dropped by re-encoding the pixels. PDFs are kept
as they are. DICOM files are read with pydicom and get a PNG rendering to look at. Anything else is refused.
"""

import io
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from pawmanity.core.errors import DomainError, InvalidInput
from pawmanity.media import image_quality

THUMBNAIL_SIZE = (320, 320)


class UnsupportedMediaType(DomainError):
    status, code = 415, "unsupported_media_type"


class ImageTooLarge(DomainError):
    status, code = 422, "image_too_large"


@dataclass
class CleanFile:
    content_type: str
    data: bytes
    suffix: str
    width: int | None = None
    height: int | None = None
    preview: bytes | None = None  # PNG
    details: dict = field(default_factory=dict)


def sniff(data):
    """The media type the bytes announce, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        return "image/heic"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if len(data) > 132 and data[128:132] == b"DICM":
        return "application/dicom"
    return None


def clean(data, *, max_pixels):
    if not data:
        raise InvalidInput("The file is empty.", errors={"file": ["The file is empty."]})
    kind = sniff(data)
    if kind is None:
        raise UnsupportedMediaType("Upload a JPEG, PNG, WebP or HEIC image, a PDF or a DICOM file.")
    if kind == "application/pdf":
        return _clean_pdf(data)
    if kind == "application/dicom":
        return _clean_dicom(data, max_pixels)
    return _clean_image(data, kind, max_pixels)


def _open_image(data, max_pixels):
    if sniff(data) == "image/heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        if image.width * image.height > max_pixels:
            raise Image.DecompressionBombError("too many pixels")
        image.load()  # decode everything now: a truncated or corrupt file fails here
        return image
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"The image has more than {max_pixels:,} pixels.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InvalidInput("The image could not be decoded; it may be truncated or corrupt.",
                           errors={"file": [str(error)[:200]]}) from None


def _clean_image(data, kind, max_pixels):
    image = _open_image(data, max_pixels)
    image = ImageOps.exif_transpose(image)  # apply the orientation before the EXIF block is dropped
    if kind in ("image/jpeg", "image/heic"):
        pixels, out_type, suffix, options = image.convert("RGB"), "image/jpeg", ".jpg", {"quality": 90}
    elif kind == "image/webp":
        pixels, out_type, suffix, options = image, "image/webp", ".webp", {"quality": 90}
    else:
        pixels, out_type, suffix, options = image, "image/png", ".png", {"optimize": False}
    if pixels.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        pixels = pixels.convert("RGBA")
    bare = _pixels_only(pixels)
    output = io.BytesIO()
    bare.save(output, format=out_type.split("/")[1].upper().replace("JPG", "JPEG"), **options)
    return CleanFile(content_type=out_type, data=output.getvalue(), suffix=suffix, width=bare.width,
                     height=bare.height, preview=_thumbnail(bare),
                     details={"received_as": kind, "quality": image_quality.assess(bare)})


def _pixels_only(image):
    """A fresh image with the same pixels and nothing else: no EXIF, GPS, XMP, ICC profile or text chunks."""
    bare = Image.frombytes(image.mode, image.size, image.tobytes())
    if image.mode == "P":
        bare.putpalette(image.getpalette())
    return bare


def _thumbnail(image):
    small = image.copy()
    small.thumbnail(THUMBNAIL_SIZE)
    if small.mode not in ("RGB", "RGBA", "L"):
        small = small.convert("RGBA")
    output = io.BytesIO()
    small.save(output, format="PNG")
    return output.getvalue()


def _clean_pdf(data):
    if b"%%EOF" not in data[-2048:]:
        raise InvalidInput("The PDF is incomplete.", errors={"file": ["The PDF is truncated."]})
    return CleanFile(content_type="application/pdf", data=data, suffix=".pdf")


def _clean_dicom(data, max_pixels):
    import numpy
    import pydicom

    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        if rows * columns > max_pixels:
            raise ImageTooLarge(f"The image has more than {max_pixels:,} pixels.")
        pixels = dataset.pixel_array
    except ImageTooLarge:
        raise
    except Exception as error:  # pydicom raises many kinds; all mean "not a usable DICOM image"
        raise InvalidInput("The DICOM file could not be read.", errors={"file": [str(error)[:200]]}) from None
    frame = pixels[0] if pixels.ndim == 3 and pixels.shape[-1] not in (3, 4) else pixels
    frame = frame.astype("float64")
    low, high = float(frame.min()), float(frame.max())
    scaled = numpy.zeros_like(frame) if high == low else (frame - low) / (high - low) * 255.0
    preview = Image.fromarray(scaled.astype("uint8"))
    output = io.BytesIO()
    preview.save(output, format="PNG")
    return CleanFile(content_type="application/dicom", data=data, suffix=".dcm", width=columns, height=rows,
                     preview=output.getvalue(), details={"modality": str(getattr(dataset, "Modality", "")) or None})
