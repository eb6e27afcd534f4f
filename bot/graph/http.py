"""The dispatcher's HTTP client for the one Graph API host: urllib3's pool, without requests.

A send through requests' Session costs about three times the CPU of the same POST through the
urllib3 pool underneath it (merging settings, preparing the request, cookie jars, hooks, the
adapter's per-call pool lookup), and at a thousand messages a second that was a third of a
dispatcher's CPU. :class:`PooledHTTP` does only what a Graph API call needs: a JSON body, the
bearer header, the timeouts. It answers with a ``requests.Response`` and raises requests'
exceptions, so :class:`~bot.graph.client.GraphClient` reads it as it reads a Session.

The environment is read once, as :func:`bot.graph.client.pooled_session` does: HTTPS_PROXY/
NO_PROXY (an http(s) proxy; any other kind is left to requests) and REQUESTS_CA_BUNDLE/
CURL_CA_BUNDLE, else certifi's bundle as requests would use.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, get_environ_proxies
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

_HEADERS = {
    "User-Agent": requests.utils.default_user_agent(),
    "Accept": "*/*",
    "Content-Type": "application/json",
}


class PooledHTTP:
    """POSTs JSON to one host over pooled connections (one per sending thread)."""

    def __init__(self, base_url: str, pool_size: int) -> None:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
        if bundle and os.path.isdir(bundle):
            tls["ca_cert_dir"] = bundle
        else:
            tls["ca_certs"] = bundle or certifi.where()
        pool = {"maxsize": pool_size, "retries": False, **tls}
        self.proxy = get_environ_proxies(base_url).get(urlsplit(base_url).scheme)
        self._pools: urllib3.PoolManager
        if self.proxy:
            proxy = urlsplit(self.proxy)
            if proxy.scheme not in ("http", "https"):
                raise ValueError(f"unsupported proxy scheme for the Graph API: {proxy.scheme}")
            headers = None
            if proxy.username:
                credentials = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
                headers = urllib3.make_headers(proxy_basic_auth=credentials)
            self._pools = urllib3.ProxyManager(self.proxy, proxy_headers=headers, **pool)
        else:
            self._pools = urllib3.PoolManager(**pool)

    def post(
        self,
        url: str,
        *,
        json: Any,  # requests' name for it, so that both read alike
        headers: dict[str, str],
        timeout: tuple[float, float],
    ) -> requests.Response:
        body = _dumps(json)
        try:
            answer = self._pools.request(
                "POST",
                url,
                body=body,
                headers={**_HEADERS, **headers},
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                redirect=False,
            )
        except NewConnectionError as exc:  # urllib3 files it under connect timeouts; it is not
            raise requests.exceptions.ConnectionError(exc) from exc
        except ConnectTimeoutError as exc:
            raise requests.exceptions.ConnectTimeout(exc) from exc
        except ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(exc) from exc
        except Urllib3SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
        except LocationValueError as exc:
            raise requests.exceptions.InvalidURL(exc) from exc
        except (HTTPError, OSError) as exc:
            raise requests.exceptions.ConnectionError(exc) from exc
        response = requests.Response()
        response.status_code = answer.status
        response.reason = answer.reason or ""
        response.headers = CaseInsensitiveDict(answer.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response._content = answer.data
        response.url = url
        return response

    def close(self) -> None:
        self._pools.clear()


def _dumps(payload: Any) -> bytes:
    # As requests encodes json=: no NaN, UTF-8.
    return json.dumps(payload, allow_nan=False).encode()
