"""Hostile files built without ever holding their decoded size in memory."""

import io
import struct
import zlib
from functools import cache


@cache
def deflated_dicom(frames=300, rows=1000, columns=1000, samples=1, bits=8, value=0):
    """A Deflated Explicit VR Little Endian DICOM whose pixel data (frames x rows x columns x samples) inflates to
    hundreds of megabytes from a few hundred kilobytes: the header is honest, only the size is hostile."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    header = Dataset()
    header.SOPClassUID = SecondaryCaptureImageStorage
    header.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    header.Modality = "OT"
    header.SamplesPerPixel = samples
    header.PhotometricInterpretation = "MONOCHROME2" if samples == 1 else "RGB"
    if samples > 1:
        header.PlanarConfiguration = 0
    header.NumberOfFrames = frames
    header.Rows, header.Columns = rows, columns
    header.BitsAllocated, header.BitsStored, header.HighBit = bits, bits, bits - 1
    header.PixelRepresentation = 0

    start = DicomBytesIO()
    start.is_little_endian, start.is_implicit_VR = True, False
    start.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(start, meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, header)
    length = frames * rows * columns * samples * (bits // 8)
    length += length % 2  # DICOM values have even lengths
    pixel_header = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW" if bits > 8 else b"OB", 0, length)

    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    output = io.BytesIO()
    output.write(start.getvalue())
    output.write(deflater.compress(body.getvalue() + pixel_header))
    block = bytes([value]) * (1 << 20)
    remaining = length
    while remaining:
        chunk = block[:min(remaining, len(block))]
        output.write(deflater.compress(chunk))
        remaining -= len(chunk)
    output.write(deflater.flush())
    return output.getvalue()


def pdf(catalog_extra=b"", objects=(), compressed=False):
    """A one-page PDF. `objects` are extra object bodies numbered from 4; `catalog_extra` goes into the catalog.
    With `compressed`, the catalog and the extra objects live in a deflated object stream (PDF 1.5), so none of
    their names appear in the raw bytes."""
    catalog = b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>"
    plain = {2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
             3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>"}
    hidden = {1: catalog, **{4 + i: body for i, body in enumerate(objects)}}
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}

    def write(number, body):
        offsets[number] = len(out)
        out.extend(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    if not compressed:
        for number, body in sorted({**plain, **hidden}.items()):
            write(number, body)
        start = len(out)
        size = max(offsets) + 1
        out.extend(b"xref\n0 %d\n0000000000 65535 f \n" % size)
        for number in range(1, size):
            out.extend(b"%010d 00000 n \n" % offsets[number])
        out.extend(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, start))
        return bytes(out)

    for number, body in plain.items():
        write(number, body)
    stream_number = max(hidden) + 1
    numbers = sorted(hidden)
    bodies, header, position = b"", b"", 0
    for number in numbers:
        header += b"%d %d " % (number, position)
        bodies += hidden[number] + b" "
        position = len(bodies)
    payload = zlib.compress(header + bodies)
    write(stream_number, b"<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
          % (len(numbers), len(header), len(payload)) + payload + b"\nendstream")
    xref_number = stream_number + 1
    offsets[xref_number] = len(out)
    rows = [struct.pack(">BIH", 0, 0, 65535)]
    for number in range(1, xref_number + 1):
        if number in hidden:
            rows.append(struct.pack(">BIH", 2, stream_number, numbers.index(number)))
        else:
            rows.append(struct.pack(">BIH", 1, offsets[number], 0))
    table = b"".join(rows)
    out.extend(b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n"
               % (xref_number, xref_number + 1, len(table)) + table + b"\nendstream\nendobj\n")
    out.extend(b"startxref\n%d\n%%%%EOF\n" % offsets[xref_number])
    return bytes(out)
