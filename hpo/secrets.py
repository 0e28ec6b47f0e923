"""Secrets in URLs: what hpo shows, logs or writes of a storage URL or a tracking URI holds no password.

:func:`masked_url` is the one place that decides what of a URL is secret; :func:`masked` applies it to
every URL in a text, such as an error message of SQLAlchemy, psycopg or MLflow that quotes the URL.
Standard library only: the CLI's error path imports it, and ``hpo --help`` must stay fast.
"""

from __future__ import annotations

import re

MASK = "***"

# Query parameters (and libpq ``key=value`` settings) whose value is a secret.
_SECRET_KEYS = ("password", "passwd", "pwd", "sslpassword", "secret", "token", "access_token", "api_key", "apikey")
_SECRET_PARAM = re.compile(rf"(?i)((?:^|[?&;\s])(?:{'|'.join(_SECRET_KEYS)})=)([^&;#\s]*)")
# The user name of a URL's userinfo: it ends at the ':' before the password.
_USER = re.compile(r"[^:/?#@\s]*")
# A URL in free text: a scheme, '://', and everything up to the next blank or quote.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]*")


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: ``user:pw@`` and ``password=``/``pwd=`` query parameters.

    Never raises, whatever ``url`` is. A password typed without percent-encoding may hold '@', ':', '/', '?'
    or '#'; everything between the user name's ':' and the '@' that may end the password is masked, so in
    doubt (``http://host:5000/a@b``) more is hidden than needed, never less.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:  # not a URL: maybe `user:pw@host` without a scheme, or libpq's `host=... password=...`
        scheme, rest = "", url
    user = _USER.match(rest)
    end = user.end() if user else 0
    if rest[end : end + 1] == ":":
        authority_end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
        # The userinfo ends at the last '@' of the authority (as urllib reads it); an '@' only after it means a
        # password with an unencoded '/', '?' or '#' in it (as SQLAlchemy reads it): mask up to the last '@'.
        at = rest.rfind("@", 0, authority_end)
        if at < 0 and sep:
            at = rest.rfind("@")
        if at > end + 1:
            rest = f"{rest[: end + 1]}{MASK}{rest[at:]}"
    return f"{scheme}{sep}{_masked_params(rest)}"


def masked(text: str) -> str:
    """``text`` with every URL in it passed through :func:`masked_url`, and any ``password=...`` masked."""
    return _masked_params(_URL_IN_TEXT.sub(lambda m: masked_url(m.group(0)), text))


def _masked_params(text: str) -> str:
    return _SECRET_PARAM.sub(lambda m: m.group(1) + (MASK if m.group(2) else ""), text)
