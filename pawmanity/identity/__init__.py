"""Who is calling: accounts (`accounts`: registration, sign-in, profile, administration), argon2id
`passwords`, JWT access and rotating refresh `tokens` with revocation, the `Actor` a service acts for, the
request-side JWT hooks (`security`) and Socket.IO authentication (`sockets`). `models` has users, sessions and
tokens; `tasks` purges expired ones. Registration announces itself with the `user_registered` signal so that
higher domains can react without identity knowing them."""
