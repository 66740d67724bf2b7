"""Clinical files: `uploads` (checked, cleaned, content-addressed, served with access checks), `imaging`
(reading the type from the bytes, Pillow and DICOM work off the event loop), `image_quality` (retake advice) and
`storage` (local disk or S3-compatible backends, a plain registry)."""
