"""The FHIR face of the house (R4B, JSON, read and search): `search` parses FHIR search parameters strictly,
`resources` maps our rows to FHIR resources, and `server` holds the registry of served resource types (the same
access policy and audit as the REST API) from which both the routes and the CapabilityStatement are made."""
