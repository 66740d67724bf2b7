"""One way to read an e-mail address, and a skeleton that makes look-alike addresses collide.

Every address that names an account or an invitation goes through `normalize_email`: email-validator checks the
syntax and normalises it (IDNA domain, NFC local part); NFKC first folds fullwidth and other compatibility forms
(`ａｌｉｃｅ` is `alice`); the whole address is then lower-cased, as addresses always were here.

`email_skeleton` goes further, only to compare: each non-ASCII character that Unicode's confusables data (UTS #39,
as shipped by confusable_homoglyphs) says looks like an ASCII character becomes that character, so Cyrillic `аlice`
and Greek `αlice` share `alice`'s skeleton. Confusions within ASCII (`l` and `1`, `rn` and `m`) are left alone:
they are distinct addresses people really have. Accounts keep their skeleton in a unique column.
"""

import unicodedata
from functools import cache

import email_validator

from pawmanity.core.errors import InvalidInput


def normalize_email(address):
    """The stored form of an address, or InvalidInput (422)."""
    folded = unicodedata.normalize("NFKC", (address or "").strip())
    try:
        valid = email_validator.validate_email(folded, check_deliverability=False)
    except email_validator.EmailNotValidError as error:
        raise InvalidInput("The e-mail address is not valid.", code="invalid_email",  # beyond `format: email`
                           errors={"email": [str(error)]}) from None
    return valid.normalized.lower()


def lookup_email(address):
    """The form to look an account up by: the stored form when the address is valid, else a plain lower-case one
    (sign-in answers 'incorrect' for both, without revealing which)."""
    try:
        return normalize_email(address)
    except InvalidInput:
        # Unpaired surrogates become "?": the result also keys rate limits in Redis, which wants valid UTF-8.
        return (address or "").strip().lower().encode("utf-8", "replace").decode("utf-8")


def email_skeleton(normalized):
    return "".join(_ascii_prototype(character) for character in unicodedata.normalize("NFKC", normalized).casefold())


@cache
def _ascii_prototype(character):
    if character.isascii():
        return character
    from confusable_homoglyphs import confusables

    for homoglyph in confusables.confusables_data.get(character, ()):
        if homoglyph["c"].isascii():
            return homoglyph["c"].lower()
    return character
