"""``--format html``: one self-contained ``report.html`` (styles and figures inlined, no script, nothing fetched at
view time), and for several runs a page per run under ``runs/``. Everything recorded is data: Jinja escapes every
value, figures are images, and a page's file name is made from the run's name, never a path taken from it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

from ftaudit.files import atomic_write_text
from ftaudit.report.collection_page import collection_context
from ftaudit.report.numbers import format_number
from ftaudit.report.records import RunRecord
from ftaudit.report.render import format_value
from ftaudit.report.run_page import run_context
from ftaudit.report.table import Group

REPORT_FILE = "report.html"
RUN_PAGES = "runs"  # the folder of the run pages, inside the output folder
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ftaudit.report", "templates"),
        autoescape=True,  # every value a template prints is escaped, markup included
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(value=format_value, number=format_number, exact=repr)
    return env


def href(target: Path, page_folder: Path) -> str:
    """A relative link from a page in ``page_folder`` to ``target``, percent-encoded."""
    return quote(Path(os.path.relpath(target, page_folder)).as_posix())


def run_names(runs: list[RunRecord], roots: list[Path]) -> dict[Path, str]:
    """Each run by its folder under the root it was found in (the folder's own name for a root that is a run)."""
    names = {}
    for run in runs:
        root = next((root for root in roots if run.path == root or root in run.path.parents), run.path.parent)
        names[run.path] = run.path.relative_to(root).as_posix() if run.path != root else run.path.name
    return names


def page_files(names: dict[Path, str]) -> dict[Path, str]:
    """A file name per run page, from its name with anything but letters, digits, ``.``, ``_`` and ``-`` replaced
    (so a name can neither leave the folder nor collide): ``<number>-<name>.html``."""
    return {
        path: f"{i:03d}-{UNSAFE.sub('_', name).strip('._')[:80] or 'run'}.html"
        for i, (path, name) in enumerate(sorted(names.items(), key=lambda item: item[1]))
    }


def render_run(env, run: RunRecord, name: str, page: Path, back: str | None) -> str:
    context = run_context(run, name)
    folder = page.parent
    context["links"] = {
        "run folder": href(run.path, folder),
        **{file: href(run.path / file, folder) for file in context["record_files"]},
        **{file: href(run.path / file, folder) for file in context["predictions"]},
    }
    context["model_links"] = {
        **{f"saved model ({model}/)": href(run.path / model, folder) for model in context["models"]},
        **{f"model card ({card})": href(run.path / card, folder) for card in context["cards"]},
    }
    return env.get_template("run.html.j2").render(run=context, back=back)


def inside(path: Path, folder: Path) -> Path:
    """``path``, after checking that it lies in ``folder`` (a page is never written elsewhere)."""
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"{path} is outside {folder}")
    return path


def write_html(
    runs: list[RunRecord],
    groups: list[Group],
    group_keys: list[str],
    metrics: list[str],
    roots: list[Path],
    out: Path,
    tradeoff: str | None,
) -> list[Path]:
    """``out/report.html``: the run's page for one run; for several, the collection's page, and each run's page in
    ``out/runs/``. Returns the files written."""
    env = environment()
    roots = [root.resolve() for root in roots]
    names = run_names(runs, roots)
    report = out / REPORT_FILE
    if len(runs) == 1:
        (run,) = runs
        atomic_write_text(report, render_run(env, run, names[run.path], report, back=None))
        return [report]
    files = page_files(names)
    pages = {path: f"{RUN_PAGES}/{file}" for path, file in files.items()}
    written = []
    for run in runs:
        page = inside(out / RUN_PAGES / files[run.path], out)
        atomic_write_text(page, render_run(env, run, names[run.path], page, back=f"../{REPORT_FILE}"))
        written.append(page)
    context = collection_context(runs, groups, group_keys, metrics, roots, pages, names, tradeoff)
    context["title"] = ", ".join(root.name for root in roots)
    atomic_write_text(report, env.get_template("collection.html.j2").render(report=context))
    return [report, *written]
