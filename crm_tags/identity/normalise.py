"""One normal form per identifier kind, so that the same person's value always compares equal:
e-mail lower-cased and trimmed, phone in E.164 (mainland China when no country is given), WeChat openid
prefixed with the app id it belongs to (`wx123:oAbc`), every other kind trimmed."""

import re

import phonenumbers
from django.utils.translation import gettext as _

EMAIL, PHONE, OPENID, UNIONID, MEMBER_NO, EXTERNAL_ID = (
    "email",
    "phone",
    "wechat_openid",
    "wechat_unionid",
    "member_no",
    "external_id",
)
DEFAULT_REGION = "CN"
MAX_LENGTH = 254

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# a plain mainland mobile number, the common case: no parsing needed
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SEPARATORS = re.compile(r"[\s\-().]")


class IdentifierInvalid(ValueError):
    """A value that is not a valid identifier of its kind; the message names the kind and the problem."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def normalise_email(value: str) -> str:
    """`  Zhang.Wei@Example.COM ` → `zhang.wei@example.com`."""
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise IdentifierInvalid(EMAIL, _("Not an e-mail address."))
    return email


def normalise_phone(value: str) -> str:
    """`138 1234 5678`, `+86 138-1234-5678`, `8613812345678` → `+8613812345678` (E.164)."""
    text = _SEPARATORS.sub("", value.strip())
    if _CN_MOBILE.match(text):
        return "+86" + text
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("86") and len(text) == 13:
        text = "+" + text
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise IdentifierInvalid(PHONE, _("Not a phone number.")) from exc
    if not phonenumbers.is_possible_number(number):
        raise IdentifierInvalid(PHONE, _("Not a phone number."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_openid(value: str, app_id: str = "") -> str:
    """An openid is unique only within one WeChat app: stored as `app_id:openid`."""
    text = value.strip()
    app_id = (app_id or "").strip()
    if app_id:
        text = f"{app_id}:{text}"
    scope, sep, openid = text.partition(":")
    if not sep or not scope or not openid:
        raise IdentifierInvalid(
            OPENID, _("An openid needs its app id: give app_id, or the value as app_id:openid.")
        )
    return text


def normalise(kind: str, value: object, app_id: str = "") -> str:
    """The normal form of `value` as an identifier of `kind` (IdentifierInvalid when it is not one)."""
    if value is None or not isinstance(value, (str, int)) or isinstance(value, bool):
        raise IdentifierInvalid(kind, _("Give the value as text."))
    text = str(value)
    if not text.strip():
        raise IdentifierInvalid(kind, _("The value is empty."))
    if kind == EMAIL:
        result = normalise_email(text)
    elif kind == PHONE:
        result = normalise_phone(text)
    elif kind == OPENID:
        result = normalise_openid(text, app_id)
    else:
        result = text.strip()
    if len(result) > MAX_LENGTH:
        raise IdentifierInvalid(kind, _("The value is longer than %(max)s characters.") % {"max": MAX_LENGTH})
    return result
