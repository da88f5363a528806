"""Reading an HTML report back as a reader's browser would see its numbers, tags and links (stdlib parser)."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


class Page(HTMLParser):
    """Every element with its attributes, the text directly inside those that carry ``data-key``, and all text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.text: list[str] = []
        self.open_keyed: list[Element] = []

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if "data-key" in element.attrs and tag in ("span", "td"):
            self.open_keyed.append(element)

    def handle_endtag(self, tag):
        if self.open_keyed and self.open_keyed[-1].tag == tag:
            self.open_keyed.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self.open_keyed:
            self.open_keyed[-1].text += data


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def numbers(page: Page) -> list[Element]:
    """The recorded numbers a page shows: elements with ``data-key`` and ``data-value``."""
    return [e for e in page.elements if "data-key" in e.attrs and "data-value" in e.attrs]
