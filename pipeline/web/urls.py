"""URL normalisation and registered domains: the one URL module (web metadata, both URL dedups, recall prefixes).

`normalize` keeps what identifies a page and drops what does not: scheme and host case, default
ports, fragments, tracking parameters (utm_*, fbclid, gclid, ...), empty query strings and
percent-encoding case. `dedup_key` also ignores http vs https and a leading `www.`, so the same
page fetched in two crawls under either spelling is one URL.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_ga|yclid|igshid)$", re.I)
_DEFAULT_PORT = {"http": 80, "https": 443}
_SAFE_PATH = "/:@!$&'()*+,;=-._~"


@lru_cache(maxsize=1)
def _extractor():
    import tldextract

    # the suffix list bundled with tldextract; never fetched
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def host_path(url: str | None) -> str:
    """A URL as `host/path` (no scheme, query or fragment; a bare `host/path` is read as http), the form
    the recall loop's URL prefixes match against."""
    if not url:
        return ""
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
        return (parts.hostname or "") + (parts.path or "/")
    except ValueError:
        return ""


def registered_domain(url: str | None) -> str | None:
    """The registered domain of a URL, with or without scheme (tldextract's bundled suffix list)."""
    host = host_path(url).partition("/")[0]
    if not host:
        return None
    ext = _extractor()(host)
    return (ext.top_domain_under_public_suffix if hasattr(ext, "top_domain_under_public_suffix") else ext.registered_domain) or host


def normalize(url: str) -> str:
    """A canonical spelling of `url` (raises ValueError for what is not an absolute http(s) URL)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORT or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname.rstrip(".").lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORT[scheme]) else f"{host}:{port}"
    path = quote(unquote(parts.path), safe=_SAFE_PATH) or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


def dedup_key(url: str) -> str:
    """The key two fetches of one page share: normalised, without scheme and `www.`."""
    try:
        n = normalize(url)
    except ValueError:
        return url.strip()
    rest = n.split("://", 1)[1]
    return rest[4:] if rest.startswith("www.") else rest
