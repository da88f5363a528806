"""Groups of first names (e.g. Mishra et al. 2020) for the counterfactual fairness probes of every task."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ftaudit.errors import DataError

# A names file may declare what its group keys encode in a comment, e.g. "# Group keys: <ethnicity>_<gender>."
KEY_PATTERN_LINE = re.compile(r"^#\s*group keys:\s*(<\w+>(?:_<\w+>)*)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class NameGroups:
    """Groups of names, in file order, and what each group key says about its group (e.g. gender=female)."""

    names: dict[str, list[str]]
    attributes: dict[str, dict[str, str]]  # attribute -> {group: value}; empty when the keys encode none

    def members(self, attribute: str) -> dict[str, list[str]]:
        """Each value of ``attribute`` (in first-seen order) and the groups that have it."""
        members: dict[str, list[str]] = {}
        for group, value in self.attributes[attribute].items():
            members.setdefault(value, []).append(group)
        return members


def load_name_groups(path: Path, attribute_names: list[str] | None = None) -> NameGroups:
    """Read a YAML ``group: [names...]`` file; attributes come from ``attribute_names`` or the file's key pattern."""
    if not path.is_file():
        raise DataError(
            f"{path}: the names file is {'a folder' if path.is_dir() else 'missing'}; give a YAML file "
            "'group: [name, ...]' (probes.fairness.groups_file or $FAIRNESS_NAMES_FILE)"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is not part of the first group name
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save the names file as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise DataError(
            f"{path}: not valid YAML ({str(err).splitlines()[0]}); expected 'group: [name, ...]' lines"
        ) from None
    if not isinstance(data, dict) or len(data) < 2:
        raise DataError(f"{path}: expected a mapping of at least 2 groups, 'group: [name, ...]' per line")
    names = {}
    for group, group_names in data.items():
        if not isinstance(group_names, list) or not group_names:
            raise DataError(f"{path}: group {group!r} must be a non-empty list of names")
        bad = [name for name in group_names if not isinstance(name, str) or not name.split()]
        if bad:
            # YAML reads unquoted yes/no/on/off/null as booleans or null, and digits as numbers
            raise DataError(f"{path}: group {group!r} has entries that are not names: {bad!r}; quote them")
        names[str(group)] = group_names
    if not attribute_names:
        declared = KEY_PATTERN_LINE.search(text)
        attribute_names = re.findall(r"<(\w+)>", declared.group(1)) if declared else []
    return NameGroups(names, split_group_keys(list(names), list(attribute_names), path))


def split_group_keys(groups: list[str], attribute_names: list[str], path: Path) -> dict[str, dict[str, str]]:
    """``black_female`` with attributes ``[ethnicity, gender]`` -> ethnicity=black, gender=female."""
    if not attribute_names:
        return {}
    pattern = "_".join(f"<{name}>" for name in attribute_names)
    attributes: dict[str, dict[str, str]] = {name: {} for name in attribute_names}
    for group in groups:
        values = group.split("_")
        if len(values) != len(attribute_names):
            raise DataError(
                f"{path}: group key {group!r} does not match the key pattern {pattern}; rename the group "
                "or set probes.fairness.attributes to the names of its '_'-separated parts"
            )
        for name, value in zip(attribute_names, values):
            attributes[name][group] = value
    return attributes
