"""Telling people things: `notifier.notify` is the one way in (an in-app notification, pushed live
after the commit, and an e-mail as the recipient's preferences allow); `inbox` lists, marks read and edits
preferences; `mailer` writes SMTP or the local outbox; `tasks.send_email` sends mail from the worker."""
