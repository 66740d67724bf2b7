"""What an uploaded file really is, decided from its bytes, and a clean copy of it.

Images (JPEG, PNG, WebP, HEIC) are fully decoded once with Pillow: decompression bombs are refused, the EXIF
orientation is applied and every piece of metadata (GPS included) is dropped by re-encoding the pixels. PDFs are kept
as they are. DICOM files are read with pydicom and get a PNG rendering to look at. Anything else is refused.
"""

import io
import re
import zlib
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from pawmanity.core.errors import DomainError, InvalidInput
from pawmanity.media import image_quality

THUMBNAIL_SIZE = (320, 320)
DICOM_HEADER_BYTES = 256 * 1024   # the elements before the pixel data must fit in this much
PIXEL_DATA_TAG = 0x7FE00010
PIXEL_ELEMENT_HEADER = 12         # tag, VR, reserved, 32-bit length (explicit VR); implicit VR uses 8 of them
PREVIEW_BAND_ROWS = 256
# Keys and action types that make a PDF do something when opened or clicked, beyond showing pages.
PDF_ACTIVE_KEYS = frozenset({"/JavaScript", "/JS", "/OpenAction", "/AA", "/Launch", "/EmbeddedFile",
                             "/EmbeddedFiles", "/EF", "/RichMedia", "/XFA"})
PDF_ACTIVE_ACTIONS = frozenset({"/JavaScript", "/Launch", "/ImportData", "/SubmitForm", "/RichMediaExecute",
                                "/GoToE"})
PDF_ACTIVE_TYPES = frozenset({"/EmbeddedFile"})
PDF_NAME = re.compile(rb"/[^\s/\[\]<>(){}%]+")


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


def clean(data, *, max_samples):
    """A clean copy of an upload, or a domain error. `max_samples` bounds the decoded size of every format: frames x
    samples per pixel x rows x columns, read from the header before anything is decoded."""
    if not data:
        raise InvalidInput("The file is empty.", errors={"file": ["The file is empty."]})
    kind = sniff(data)
    if kind is None:
        raise UnsupportedMediaType("Upload a JPEG, PNG, WebP or HEIC image, a PDF or a DICOM file.")
    if kind == "application/pdf":
        return _clean_pdf(data)
    if kind == "application/dicom":
        return _clean_dicom(data, max_samples)
    return _clean_image(data, kind, max_samples)


def _open_image(data, max_samples):
    if sniff(data) == "image/heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        # Only the first frame of an animated or multi-image file is decoded and kept, so it is the one that counts.
        if image.width * image.height * len(image.getbands()) > max_samples:
            raise Image.DecompressionBombError("too many samples")
        image.load()  # decode everything now: a truncated or corrupt file fails here
        return image
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"The image has more than the {max_samples:,} samples (pixels x channels) allowed per "
                            "upload.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InvalidInput("The image could not be decoded; it may be truncated or corrupt.",
                           errors={"file": [str(error)[:200]]}) from None


def _clean_image(data, kind, max_samples):
    # Each step drops the previous copy, so a job holds about two full-size images at a time, not five.
    image = _open_image(data, max_samples)
    image = ImageOps.exif_transpose(image)  # apply the orientation before the EXIF block is dropped
    if kind in ("image/jpeg", "image/heic"):
        out_type, suffix, options = "image/jpeg", ".jpg", {"quality": 90}
        if image.mode != "RGB":
            image = image.convert("RGB")
    elif kind == "image/webp":
        out_type, suffix, options = "image/webp", ".webp", {"quality": 90}
    else:
        out_type, suffix, options = "image/png", ".png", {"optimize": False}
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    bare = _pixels_only(image)
    del image
    output = io.BytesIO()
    bare.save(output, format=out_type.split("/")[1].upper().replace("JPG", "JPEG"), **options)
    return CleanFile(content_type=out_type, data=output.getvalue(), suffix=suffix, width=bare.width,
                     height=bare.height, preview=_thumbnail(bare),
                     details={"received_as": kind, "quality": image_quality.assess(bare)})


def _pixels_only(image):
    """A fresh image with the same pixels and nothing else: no EXIF, GPS, XMP, ICC profile or text chunks."""
    bare = Image.new(image.mode, image.size)
    bare.paste(image, (0, 0))  # pixel to pixel, without an intermediate bytes copy
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
    found = _pdf_active_content(data)
    if found:
        raise UnsupportedMediaType(f"PDFs with active content are not accepted (found {', '.join(sorted(found))}); "
                                   "print it to a new PDF or upload it as an image.", code="pdf_active_content")
    return CleanFile(content_type="application/pdf", data=data, suffix=".pdf")


def _pdf_active_content(data):
    """The active-content keys (scripts, actions, launchers, attachments, rich media) in the PDF.

    Two looks: the raw bytes (every uncompressed dictionary, including objects no cross-reference table points to,
    which repairing viewers still find) and pypdf's parse of the object graph (dictionaries inside compressed object
    streams, names spelt with #xx escapes). A file pypdf cannot parse is accepted only if it has no compressed object
    streams, since the raw look then saw every dictionary. Password-protected files cannot be checked."""
    found = {name for name in PDF_ACTIVE_KEYS | PDF_ACTIVE_ACTIONS if name in _pdf_names(data)}
    try:
        found |= _pdf_graph_active_content(data)
    except UnsupportedMediaType:
        raise
    except Exception as error:  # pypdf raises many kinds on damaged files
        if b"/ObjStm" in data:
            raise InvalidInput("The PDF could not be read.", errors={"file": [str(error)[:200]]}) from None
    return found


def _pdf_names(data):
    """Every /Name in the raw bytes, with #xx escapes decoded."""
    names = set()
    for match in PDF_NAME.finditer(data):
        raw = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), match.group(0))
        names.add(raw.decode("latin-1"))
    return names


def _pdf_graph_active_content(data):
    import pypdf
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnsupportedMediaType("Password-protected PDFs cannot be checked; upload an unprotected copy.",
                                   code="pdf_encrypted")
    found, seen, pending = set(), set(), [reader.trailer]
    while pending:
        item = pending.pop()
        if isinstance(item, IndirectObject):
            if (item.idnum, item.generation) in seen:
                continue
            seen.add((item.idnum, item.generation))
            item = item.get_object()
        if isinstance(item, DictionaryObject):  # stream dictionaries included
            found.update(str(key) for key in item.keys() if key in PDF_ACTIVE_KEYS)
            for key in ("/S", "/Type"):
                if item.get(key) in PDF_ACTIVE_ACTIONS | PDF_ACTIVE_TYPES:
                    found.add(str(item.get(key)))
            pending.extend(item.values())
        elif isinstance(item, ArrayObject):
            pending.extend(item)
    return found


def _clean_dicom(data, max_samples):
    """Keep the file as sent; render its first frame. Sizes come from the header and are checked before any pixel is
    decoded, or any deflated byte inflated beyond the header and the first frame."""
    import pydicom
    import pydicom.pixels
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

    try:
        meta, dataset_start = _dicom_file_meta(data)
        if meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
            # pydicom would inflate the whole dataset up front: a few hundred KB can inflate to gigabytes.
            header = _first_frame_of_deflated(memoryview(data)[dataset_start:], max_samples)
            meta.TransferSyntaxUID = ExplicitVRLittleEndian  # what the inflated bytes are
            header.file_meta = meta
            dataset = header
        else:
            header, _ = _dicom_header(data[dataset_start:dataset_start + DICOM_HEADER_BYTES],
                                      meta.get("TransferSyntaxUID"))
            _check_dicom_size(header, max_samples)
            dataset = pydicom.dcmread(io.BytesIO(data))  # no bigger than the upload; nothing decoded yet
        frame = pydicom.pixels.pixel_array(dataset, index=0)  # decodes this one frame only
    except ImageTooLarge:
        raise
    except Exception as error:  # pydicom raises many kinds; all mean "not a usable DICOM image"
        raise InvalidInput("The DICOM file could not be read.", errors={"file": [str(error)[:200]]}) from None
    if frame.ndim == 3 and frame.shape[-1] not in (3, 4):
        frame = frame[..., 0]  # several samples that are not colour: show the first
    output = io.BytesIO()
    Image.fromarray(_window_to_bytes(frame)).save(output, format="PNG")
    return CleanFile(content_type="application/dicom", data=data, suffix=".dcm", width=int(header.Columns),
                     height=int(header.Rows), preview=output.getvalue(),
                     details={"modality": str(getattr(header, "Modality", "")) or None})


def _dicom_file_meta(data):
    """The file meta group (never compressed) and the offset where the dataset starts."""
    import pydicom.filereader

    stream = io.BytesIO(data)
    pydicom.filereader.read_preamble(stream, False)
    # pydicom has no public reader for the meta group of an in-memory file; dcmread would read the dataset too.
    meta = pydicom.filereader._read_file_meta_info(stream)
    return meta, stream.tell()


def _dicom_header(prefix, transfer_syntax):
    """The elements before the pixel data, read from the first bytes of the dataset, and where pixel data starts."""
    import pydicom.filereader
    from pydicom.uid import UID

    syntax = UID(transfer_syntax) if transfer_syntax else UID("1.2.840.10008.1.2.1")
    if not syntax.is_transfer_syntax:
        raise ValueError(f"unknown transfer syntax {syntax}")
    stream = io.BytesIO(prefix)
    header = pydicom.filereader.read_dataset(stream, syntax.is_implicit_VR, syntax.is_little_endian,
                                              stop_when=lambda tag, vr, length: tag == PIXEL_DATA_TAG)
    if "Rows" not in header or "Columns" not in header or len(prefix) - stream.tell() < PIXEL_ELEMENT_HEADER:
        raise ValueError(f"no image header within the first {DICOM_HEADER_BYTES // 1024} KB")
    return header, stream.tell()


def _first_frame_of_deflated(deflated, max_samples):
    """The header of a deflated dataset with its first frame as PixelData, inflating no further than that."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    inflated = bytearray(inflater.decompress(deflated, DICOM_HEADER_BYTES))
    header, pixels_at = _dicom_header(bytes(inflated), "1.2.840.10008.1.2.1")
    _check_dicom_size(header, max_samples)
    bits = int(header.get("BitsAllocated") or 8)
    if bits % 8:
        raise ValueError("bit-packed pixel data is not supported in deflated files")
    frame_bytes = int(header.Rows) * int(header.Columns) * int(header.get("SamplesPerPixel") or 1) * (bits // 8)
    end = pixels_at + PIXEL_ELEMENT_HEADER + frame_bytes
    while len(inflated) < end and inflater.unconsumed_tail:
        inflated += inflater.decompress(inflater.unconsumed_tail, end - len(inflated))
    if len(inflated) < end:
        raise ValueError("the pixel data is shorter than one frame")
    header.PixelData = bytes(inflated[pixels_at + PIXEL_ELEMENT_HEADER:end])
    header.NumberOfFrames = 1
    return header


def _check_dicom_size(header, max_samples):
    frames = int(header.get("NumberOfFrames") or 1)
    samples = int(header.get("SamplesPerPixel") or 1)
    rows, columns = int(header.Rows), int(header.Columns)
    if min(frames, samples, rows, columns) < 1:
        raise ValueError("the header describes an empty image")
    if frames * samples * rows * columns > max_samples:
        raise ImageTooLarge(f"The image holds {frames} frame(s) of {columns}x{rows} pixels with {samples} sample(s) "
                            f"each: more than the {max_samples:,} samples allowed per upload.")


def _window_to_bytes(frame):
    """Stretch the frame's values over 0-255 for display, a band of rows at a time: no full-frame float copy."""
    import numpy

    low, high = int(frame.min()), int(frame.max())
    out = numpy.zeros(frame.shape, dtype=numpy.uint8)
    if high == low:
        return out
    scale = numpy.float32(255.0 / (high - low))
    for start in range(0, frame.shape[0], PREVIEW_BAND_ROWS):
        band = frame[start:start + PREVIEW_BAND_ROWS].astype(numpy.float32)
        band -= low
        band *= scale
        out[start:start + PREVIEW_BAND_ROWS] = band
    return out
