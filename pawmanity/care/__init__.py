"""The people and animals cared for: `patients` (profiles, guardians and invitations, weights), `records`
(the versioned medical history) and `access`, the one place that decides who may see or change which patient.
`models` also holds the Upload row, which belongs to a patient's file; `media` stores and checks its bytes."""
