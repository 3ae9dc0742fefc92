"""Known vulnerabilities of the installed distributions, from PyPI's project pages.

pip-audit asks PyPI for each exact version (/pypi/NAME/VERSION/json) and OSV; from this network neither
answers, so it skips every package. The project page (/pypi/NAME/json) does answer, and lists the known
vulnerabilities of the latest release: for every distribution installed at that release, that is its
audit. Exit 1 on any vulnerability found (or when nothing could be audited), 2 when PyPI does not answer;
distributions older than the latest are listed as not audited.
"""

import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import distributions

from packaging.version import Version


def check(name: str, version: str) -> tuple[str, str, str | None, list]:
    """(name, version, why it was not audited or None, its known vulnerabilities)."""
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=30) as r:
            page = json.load(r)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return name, version, "not on PyPI", []
        raise
    latest = page["info"]["version"]
    if Version(latest) != Version(Version(version).public):  # 2.13.0+cpu is PyPI's 2.13.0
        return name, version, f"latest is {latest}", []
    return name, version, None, [v for v in page.get("vulnerabilities", []) if not v.get("withdrawn")]


def main() -> int:
    installed = sorted({(d.metadata["Name"].lower(), d.version) for d in distributions() if d.metadata["Name"]})
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda nv: check(*nv), installed))
    except (OSError, ValueError, KeyError) as e:  # no answer, or not PyPI's: no audit at all, not a clean one
        print(f"audit failed: PyPI's project pages did not answer as expected ({e!r})")
        return 2
    audited = [r for r in results if r[2] is None]
    found = [(n, v, x.get("id"), x.get("fixed_in")) for n, v, _, vulns in audited for x in vulns]
    print(f"{len(installed)} distributions installed; {len(audited)} at PyPI's latest release, audited: "
          f"{len(found)} known vulnerabilities")
    for name, version, vid, fixed in found:
        print(f"  VULNERABLE {name} {version}: {vid}, fixed in {', '.join(fixed or []) or 'no release yet'}")
    for name, version, why, _ in results:
        if why:
            print(f"  not audited: {name} {version} ({why})")
    return 1 if found or not audited else 0


if __name__ == "__main__":
    sys.exit(main())
