"""Reading prompt -> response examples: JSONL pairs, chat JSONL conversations, and labelled data as instructions.

Every example says where it came from (``file:line``), so that a bad one is reported there. A conversation keeps its
turns before the answer; the answer is its last turn, which must be the assistant's. Labelled examples (Banking77,
PhraseBank, any text_csv table) become ``prompt.instruction`` with the text in it, answered by the label's string
(``prompt.label_template``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ftaudit.errors import ConfigError, DataError
from ftaudit.tasks.classification.reading import Example, json_records

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class PromptExample:
    where: str  # "file:line" (or the labelled example's id)
    prompt: str | tuple[dict, ...]  # the prompt's text, or the conversation's turns before the answer
    response: str
    label: str | None = None  # labelled data: the label the response names
    text: str | None = None  # labelled data: the text the prompt holds (the fairness probe re-attributes it)
    text_pair: str | None = None


def text_field(record: dict, name: str, where: str) -> str:
    """A field that must be a non-blank string."""
    if name not in record:
        raise DataError(f"{where}: no {name!r} field; each line needs {name!r} (a string)")
    value = record[name]
    if not isinstance(value, str):
        raise DataError(f"{where}: {name!r} is {type(value).__name__} {value!r:.60}; expected a string")
    if not value.strip():
        raise DataError(f"{where}: empty {name!r}; every example needs a non-empty one")
    return value


def read_prompt_jsonl(path: Path, prompt_field: str, response_field: str) -> list[PromptExample]:
    """``{"prompt": ..., "response": ...}`` per line (field names configurable)."""
    examples = []
    for number, record in json_records(path):
        where = f"{path}:{number}"
        examples.append(
            PromptExample(where, text_field(record, prompt_field, where), text_field(record, response_field, where))
        )
    return non_empty(examples, path)


def read_chat_jsonl(path: Path, messages_field: str) -> list[PromptExample]:
    """``{"messages": [{"role", "content"}, ...]}`` per line: the last turn is the assistant's answer."""
    examples = []
    for number, record in json_records(path):
        where = f"{path}:{number}"
        messages = record.get(messages_field)
        if not isinstance(messages, list) or len(messages) < 2:
            raise DataError(f"{where}: {messages_field!r} must be a list of 2 or more turns {{'role', 'content'}}")
        turns = []
        for index, turn in enumerate(messages):
            at = f"{where}: turn {index}"
            if not isinstance(turn, dict):
                raise DataError(f"{at} is {type(turn).__name__}; expected {{'role': ..., 'content': ...}}")
            role, content = text_field(turn, "role", at), text_field(turn, "content", at)
            if role not in ROLES:
                raise DataError(f"{at}: role {role!r} is not one of {', '.join(ROLES)}")
            turns.append({"role": role, "content": content})
        if turns[-1]["role"] != "assistant":
            raise DataError(
                f"{where}: the last turn is the {turns[-1]['role']}'s; the conversation must end with the "
                "assistant's answer (the response trained on)"
            )
        examples.append(PromptExample(where, tuple(turns[:-1]), turns[-1]["content"]))
    return non_empty(examples, path)


def non_empty(examples: list[PromptExample], path: Path) -> list[PromptExample]:
    if not examples:
        raise DataError(f"{path}: no examples; expected one JSON object per line")
    return examples


def label_responses(labels: list[str], template: str) -> list[str]:
    """Each label's response string; two labels with the same string could not be told apart."""
    try:
        responses = [template.format(label=label, name=label.replace("_", " ")) for label in labels]
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(f"data.prompt.label_template={template!r}: {err!r}; use {{label}} and {{name}}") from None
    for index, response in enumerate(responses):
        if not response.strip():
            raise ConfigError(f"data.prompt.label_template={template!r} gives an empty response for {labels[index]!r}")
        if responses.index(response) != index:
            first = labels[responses.index(response)]
            raise DataError(
                f"data.prompt.label_template={template!r} gives the same response {response!r} for the labels "
                f"{first!r} and {labels[index]!r}; use {{label}} or rename one"
            )
    return responses


def instruction_examples(
    examples: list[Example], instruction: str, responses: dict[str, str], source: str
) -> list[PromptExample]:
    """Labelled examples as ``instruction`` (with ``{text}``, ``{text_pair}``) answered by their label's response."""
    converted = []
    for example in examples:
        try:
            prompt = instruction.format(text=example.text, text_pair=example.text_pair or "")
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(
                f"data.prompt.instruction={instruction!r}: {err!r}; use {{text}} (and {{text_pair}})"
            ) from None
        converted.append(
            PromptExample(
                f"{source}: {example.id}",
                prompt,
                responses[example.label],
                example.label,
                example.text,
                example.text_pair,
            )
        )
    return converted
