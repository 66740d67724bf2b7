"""Domain logic shared by plugins. Services never touch `request`; they take plain values and raise domain errors."""
