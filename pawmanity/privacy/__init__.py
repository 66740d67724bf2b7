"""Patients' rights over their data: exports (a FHIR Bundle and the files, in one archive) and erasure (everything
deleted or pseudonymised, clinical records under a retention duty held apart until their period ends)."""
