"""Compiled report templates kept in the user's cache folder (``report.compiled``)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import jinja2

from reports.report import cachefiles, compiled
from reports.report.analysis import analyse
from reports.report.render import Branding, render_html
from tests._sample import realistic

REPO = Path(__file__).resolve().parents[1]

# A fresh process renders the sample report's HTML, counting the templates Jinja2 compiles.
RENDER = """
import hashlib, json, sys
from datetime import date
import jinja2
compiles = []
original = jinja2.Environment.compile
def counting(self, *args, **kwargs):
    compiles.append(1)
    return original(self, *args, **kwargs)
jinja2.Environment.compile = counting
from reports.report.analysis import analyse
from reports.report.render import Branding, render_html
from tests._sample import realistic
html = render_html(analyse(realistic(), top_n=15), [], Branding("Acme University"),
                   templates_dir=None, generated_on=date(2026, 11, 16), locale=sys.argv[1])
print(json.dumps([len(compiles), hashlib.sha256(html.encode()).hexdigest()]))
"""


def _fresh_render(cache_home: Path, locale: str = "en") -> tuple[int, str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", RENDER, locale], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
    count, digest = json.loads(done.stdout)
    return count, digest


def test_a_fresh_process_loads_the_templates_the_last_one_compiled(tmp_path: Path) -> None:
    compiled_first, html_first = _fresh_render(tmp_path)
    assert compiled_first >= 5  # the report and its partials
    folder = tmp_path / "ibl-reports" / compiled.folder_name()
    files = sorted(folder.glob("*.cache"))
    assert len(files) == compiled_first
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert _fresh_render(tmp_path) == (0, html_first)  # loaded, not compiled; the same HTML
    assert _fresh_render(tmp_path, "de_DE")[0] == 0  # the code does not depend on the language
    for file in files:  # damaged (or cut short): compiled anew, the same HTML
        file.write_bytes(file.read_bytes()[:40])
    assert _fresh_render(tmp_path) == (compiled_first, html_first)


def test_a_folder_others_can_write_is_not_used(tmp_path: Path) -> None:
    name = compiled.folder_name()
    shared = tmp_path / "ibl-reports" / name
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    assert cachefiles.cache_folder(name, {"XDG_CACHE_HOME": str(tmp_path)}) is None
    shared.chmod(0o700)
    assert cachefiles.cache_folder(name, {"XDG_CACHE_HOME": str(tmp_path)}) == shared
    shared.parent.chmod(0o777)  # another user could swap the folder itself
    assert cachefiles.cache_folder(name, {"XDG_CACHE_HOME": str(tmp_path)}) is None
    shared.parent.chmod(0o755)
    home = tmp_path / "home"
    assert cachefiles.cache_folder(name, {"HOME": str(home)}) == (
        home / ".cache" / "ibl-reports" / name)
    assert stat.S_IMODE((home / ".cache" / "ibl-reports").stat().st_mode) == 0o700
    assert cachefiles.cache_folder(name, {}) is None
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert cachefiles.cache_folder(name, {"XDG_CACHE_HOME": str(blocked)}) is None


def test_a_cache_file_is_read_only_if_it_is_ours_private_and_whole(tmp_path: Path) -> None:
    kept = tmp_path / "kept.cache"
    cachefiles.write(kept, b"compiled code")
    assert cachefiles.read(kept) == b"compiled code"
    data = kept.read_bytes()
    kept.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # damaged on disk
    assert cachefiles.read(kept) is None
    kept.write_bytes(data[:-1])  # cut short
    assert cachefiles.read(kept) is None
    kept.write_bytes(data)
    kept.chmod(0o666)  # others could have written it
    assert cachefiles.read(kept) is None
    kept.chmod(0o600)
    link = tmp_path / "link.cache"
    link.symlink_to(kept)
    assert cachefiles.read(link) is None and cachefiles.read(kept) == b"compiled code"
    assert cachefiles.read(tmp_path / "missing.cache") is None


def test_without_a_folder_the_templates_are_kept_in_memory() -> None:
    kept = compiled._cache_class()(None)

    env = jinja2.Environment(loader=jinja2.DictLoader({"t": "{{ 6 * 7 }}"}),
                             bytecode_cache=kept, **compiled.SETTINGS)
    assert env.get_template("t").render() == "42"
    assert len(kept.code) == 1
    again = jinja2.Environment(loader=jinja2.DictLoader({"t": "{{ 6 * 7 }}"}),
                               bytecode_cache=kept, **compiled.SETTINGS)
    assert again.get_template("t").render() == "42" and len(kept.code) == 1


def test_the_folder_changes_with_the_settings() -> None:
    name = compiled.folder_name()
    assert name == compiled.folder_name(dict(compiled.SETTINGS))
    assert name != compiled.folder_name({**compiled.SETTINGS, "trim_blocks": False})
    assert name != compiled.folder_name(newstyle=False)


def test_the_report_renders_the_same_in_this_process_and_a_fresh_one(tmp_path: Path) -> None:
    html = render_html(analyse(realistic(), top_n=15), [], Branding("Acme University"),
                       templates_dir=None, generated_on=date(2026, 11, 16))
    assert _fresh_render(tmp_path)[1] == hashlib.sha256(html.encode()).hexdigest()


def test_only_the_built_in_templates_are_written_to_the_folder(tmp_path: Path) -> None:
    builtin, user, folder = tmp_path / "builtin", tmp_path / "user", tmp_path / "cache"
    for where in (builtin, user, folder):
        where.mkdir()
    (builtin / "shipped.j2").write_text("{{ 1 + 1 }}")
    (user / "mine.j2").write_text("{{ 2 + 2 }}")
    kept = compiled._cache_class()(folder, builtin)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(user), str(builtin)]),
                             bytecode_cache=kept, **compiled.SETTINGS)
    assert env.get_template("shipped.j2").render() == "2"
    assert env.get_template("mine.j2").render() == "4"
    assert len(kept.code) == 2 and len(list(folder.glob("*.cache"))) == 1
