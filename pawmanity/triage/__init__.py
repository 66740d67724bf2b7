"""The symptom checker: `knowledge` (the sourced knowledge base), `cases` (synthetic training cases and the
feature encoder), `classifier` (trained per-species models, versioned artefacts), `assessment` (models plus red
flags into one safe answer) and `diagnoses` (assessments logged to MongoDB through an outbox, doctors' feedback);
`tasks` drains the outbox and retrains."""
