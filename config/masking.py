"""Masking of customers' contact data for people without the `view_pii` permission."""


def mask_email(value: str | None) -> str | None:
    """`zhang.wei@example.com` → `z***@example.com`."""
    if not value:
        return value
    local, sep, domain = value.partition("@")
    if not sep:
        return value[:1] + "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(value: str | None) -> str | None:
    """`13812345678` → `138****5678`; short numbers keep only their last two digits."""
    if not value:
        return value
    digits = value.strip()
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) > 4:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)
