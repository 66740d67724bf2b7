"""A doctor and a patient's guardians talking: `consultations` (open from a confirmed appointment,
end into the medical history), `messaging` (chat over REST and Socket.IO, one numbered store, digests of unread
messages) and `video` (join tokens, ICE servers, WebRTC signalling state); `models` and `tasks` beside them."""
