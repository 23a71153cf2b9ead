"""Files and images a caller attaches to a request, and how much of each one model is sent.

An attachment (`Input`) is read once, by the server (`server.mcp.inputs`): a text file's content with
secrets redacted, or an image's base64 bytes and mime type, with its SHA-256 and its size in prompt
tokens. The call carries them beside its messages (`Attached`); each model's share is worked out just
before that model is called (`fit`, from `engine.calling`), because models differ in what they can take:

- images go only to a model known to read them (`vision` true); any other model is not called for
  them and its record says why (a mixed ensemble goes on with the members that can see);
- text files share what is left of the model's context window after the messages, the room for the
  answer and the images. Small files are sent whole; a file above its share is cut to it with a marker
  saying so (`oversize: excerpt`, the default) or the model is not called, with a message naming the
  file, its size in tokens and the model's window (`oversize: refuse`).

Sessions keep only `InputRef`s (name, kind, mime type, hash, size): never the bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from chorus_mcp.strategies.core.errors import ChorusError
from chorus_mcp.strategies.core.image_size import ImageFamily, image_tokens

InputKind = Literal["text", "image"]
Oversize = Literal["excerpt", "refuse"]

UNKNOWN_WINDOW = 8_192
"""The window assumed for a model whose window nobody knows (the model map does not list it)."""
MIN_EXCERPT_TOKENS = 200
"""A share smaller than this is no useful excerpt: the file is refused instead."""
BLOCK_TOKENS = 40
"""The markers around one file's text, in tokens (generous)."""


class InputRef(BaseModel):
    """What identifies an attachment without its content: what a session stores and a result shows."""

    model_config = ConfigDict(frozen=True)

    name: str
    """The path as resolved, or the resource URI as given."""
    kind: InputKind
    mime_type: str
    sha256: str
    """Hex SHA-256 of the bytes read (for text: before redaction)."""
    size_bytes: int
    tokens: int
    """Prompt tokens it takes whole (text: counted; an image: the most any provider's rule counts it,
    `core.image_size.most_tokens`; each model is then counted by its own family's rule)."""
    width: int | None = None
    height: int | None = None
    """An image's size in pixels, from its header (None when it could not be read)."""
    redacted: int = 0
    """Secrets removed from a text file's content before it was sent anywhere."""

    @property
    def size(self) -> tuple[int, int] | None:
        return (self.width, self.height) if self.width and self.height else None

    def described(self) -> str:
        """`notes.md (text, 1,234 tokens, sha256 ab12cd34ef56)`; `dot.png (image, image/png 1x1, ...)`."""
        size = f"{self.tokens:,} tokens" if self.kind == "text" else self.mime_type
        if self.kind == "image" and self.size is not None:
            size += f" {self.width}x{self.height}"
        return f"{self.name} ({self.kind}, {size}, sha256 {self.sha256[:12]})"


class Input(InputRef):
    """An attachment with its content."""

    text: str | None = None
    """A text file's content (secrets redacted)."""
    data: str | None = None
    """An image's bytes, base64."""

    def ref(self) -> InputRef:
        return InputRef.model_validate(self.model_dump(include=set(InputRef.model_fields)))


class Attached(BaseModel):
    """The inputs of one call, and what to do with a text file too large for a model's share."""

    model_config = ConfigDict(frozen=True)

    items: tuple[Input, ...]
    oversize: Oversize = "excerpt"
    images_seen_by: str | None = None
    """Who was shown the images (`the members`), when a model that cannot read them may be sent the rest
    instead, told so: a judge, chair or later pipeline stage reads the others' answers, not the images.
    None: such a model is not called (as for the members themselves)."""

    def refs(self) -> list[InputRef]:
        return [item.ref() for item in self.items]

    def seen_by(self, who: str) -> Attached:
        """These inputs, for a model that reads what `who` answered: without images if it cannot see."""
        return self.model_copy(update={"images_seen_by": who})


class ImagePart(BaseModel):
    """An image in a message, as a provider is sent it."""

    model_config = ConfigDict(frozen=True)

    name: str
    mime_type: str
    data: str
    """Base64."""
    sha256: str
    tokens: int = 0
    """Prompt tokens it costs the model it is sent to (`core.image_size.image_tokens`)."""

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.data}"


def reserved_tokens(attached: Attached | None) -> int:
    """Prompt tokens `attached` takes whole (each text file with its markers, each image its estimate):
    the room history trimming keeps free for them (`engine.context_passing`)."""
    if attached is None:
        return 0
    return sum(i.tokens + (BLOCK_TOKENS if i.kind == "text" else 0) for i in attached.items)


def rough_tokens(texts: Iterable[str]) -> int:
    """The messages' tokens as the fit counts them beside the files: ~3 characters a token and 4 a
    message, generous on purpose (an over-count cuts a file a little early; an under-count overflows)."""
    return sum(len(text) // 3 + 4 for text in texts)


class InputNotSent(ChorusError):
    """A model was not called because it cannot take the call's inputs (it is skipped, not failed)."""


@dataclass(frozen=True)
class Fitted:
    """One model's share of the inputs."""

    text: str
    """The text files' blocks, to follow the user's message ('' when there are none)."""
    images: tuple[ImagePart, ...]
    notes: tuple[str, ...]
    """What was cut, in words, for the result's decisions."""


def fit(
    attached: Attached,
    *,
    model: str,
    window: int,
    room: int,
    vision: bool | None,
    vision_source: str,
    family: ImageFamily = "other",
) -> Fitted:
    """`model`'s share of `attached`: `room` is what its `window` leaves after the messages and the answer;
    its images are counted by `family`'s rule. Raises `InputNotSent` naming the model, the input and why
    when the model cannot be sent them."""
    images = [i for i in attached.items if i.kind == "image"]
    texts = [i for i in attached.items if i.kind == "text"]
    withheld: list[str] = []
    if images and vision is not True:
        names = ", ".join(i.name for i in images)
        why = (
            f"it does not read images (per the {vision_source})"
            if vision is False
            else f"whether it reads images is unknown (set models.{model}.vision: true if it does)"
        )
        who = attached.images_seen_by
        if who is None:
            raise InputNotSent(f"{model}: not called: {len(images)} image(s) attached ({names}) and {why}")
        withheld = [
            f"[Chorus: {len(images)} image(s) attached to the question ({names}) were shown to {who}, "
            "not to you; you have not seen them. Rely on the text and on what they answered.]",
            f"{model}: sent without the {len(images)} image(s) {who} saw ({why}); its prompt says so",
        ]
        images = []
    costs = [image_tokens(i.size, family) for i in images]
    room -= sum(costs)
    if room < 0 and images:
        raise InputNotSent(
            f"{model}: not called: {len(images)} image(s) need ~{sum(costs):,} tokens, "
            f"more than its {window:,}-token context window leaves"
        )
    if room < 0:
        raise InputNotSent(
            f"{model}: not called: its messages and the answer fill its {window:,}-token context window, "
            "leaving no room for the attached files"
        )
    blocks, notes = _share_text(texts, attached.oversize, model=model, window=window, room=room)
    parts = tuple(
        ImagePart(name=i.name, mime_type=i.mime_type, data=i.data or "", sha256=i.sha256, tokens=cost)
        for i, cost in zip(images, costs, strict=True)
    )
    if withheld:
        blocks.append(withheld[0])
        notes.insert(0, withheld[1])
    return Fitted(text="\n\n".join(blocks), images=parts, notes=tuple(notes))


def _share_text(
    texts: list[Input], oversize: Oversize, *, model: str, window: int, room: int
) -> tuple[list[str], list[str]]:
    """Each file whole while it fits its fair share, the rest cut to theirs (smallest files first, so
    what a small file leaves goes to the larger ones)."""
    shown: dict[int, str] = {}
    notes: list[str] = []
    left = room
    order = sorted(range(len(texts)), key=lambda i: texts[i].tokens)
    for position, index in enumerate(order):
        item = texts[index]
        share = max(0, left // (len(order) - position)) - BLOCK_TOKENS
        if item.tokens <= share:
            shown[index] = _block(item, item.text or "")
            left -= item.tokens + BLOCK_TOKENS
            continue
        too_big = (
            f"{item.name} is {item.tokens:,} tokens, more than its share ({max(share, 0):,} tokens) of "
            f"{model}'s {window:,}-token context window"
        )
        if oversize == "refuse" or share < MIN_EXCERPT_TOKENS:
            hint = "attach a smaller file or an excerpt, or ask a model with a larger window"
            raise InputNotSent(f"{model}: not called: {too_big}; {hint}")
        text = _excerpt(item.text or "", item.tokens, share)
        marker = (
            f"[cut by Chorus: {item.name} is {item.tokens:,} tokens; only its first ~{share:,} fit "
            f"{model}'s context window — the rest was not sent]"
        )
        shown[index] = _block(item, f"{text}\n{marker}")
        notes.append(f"{model}: {too_big}: sent its first ~{share:,} tokens")
        left -= share + BLOCK_TOKENS
    return [shown[i] for i in range(len(texts))], notes


def _excerpt(text: str, tokens: int, keep: int) -> str:
    """The beginning of `text` holding about `keep` of its `tokens` (cut at a line end when one is near)."""
    # Characters per token vary along a file; 10 % under the proportion keeps the excerpt within the share.
    chars = int(len(text) * keep / max(tokens, 1) * 0.9)
    cut = text[:chars]
    line_end = cut.rfind("\n")
    return cut[:line_end] if line_end > chars * 0.8 else cut


def _block(item: Input, text: str) -> str:
    return f'<file name="{item.name}" sha256="{item.sha256[:12]}">\n{text}\n</file>'
