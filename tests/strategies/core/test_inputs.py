"""How one model's share of the attached files and images is worked out (`core.inputs.fit`)."""

from __future__ import annotations

import pytest

from chorus_mcp.strategies.core.image_size import image_tokens, most_tokens
from chorus_mcp.strategies.core.inputs import Attached, Input, InputNotSent, fit


def text(name: str, tokens: int) -> Input:
    body = "".join(f"{name} line {i}\n" for i in range(tokens // 4 + 1))
    return Input(
        name=name,
        kind="text",
        mime_type="text/plain",
        sha256="ab" * 32,
        size_bytes=len(body),
        tokens=tokens,
        text=body,
    )


IMAGE = Input(
    name="dot.png",
    kind="image",
    mime_type="image/png",
    sha256="cd" * 32,
    size_bytes=10,
    tokens=most_tokens((1024, 1024)),
    width=1024,
    height=1024,
    data="AAAA",
)


def test_small_files_go_whole_and_what_they_leave_goes_to_the_large_one() -> None:
    small, large = text("small", 100), text("large", 5000)
    fitted = fit(
        Attached(items=(small, large)), model="m", window=8000, room=4000, vision=None, vision_source=""
    )
    assert small.text is not None and small.text in fitted.text
    assert "[cut by Chorus: large is 5,000 tokens" in fitted.text
    # The large file's share is what the small one left (4000 - 100 - the markers), not half the room.
    assert fitted.notes == (
        "m: large is 5,000 tokens, more than its share (3,820 tokens) of m's 8,000-token context window: "
        "sent its first ~3,820 tokens",
    )
    assert fitted.text.index("small") < fitted.text.index("large")  # in the order given


def test_refuse_names_the_file_its_tokens_and_the_window() -> None:
    with pytest.raises(InputNotSent) as refused:
        fit(
            Attached(items=(text("big.py", 9000),), oversize="refuse"),
            model="m",
            window=8000,
            room=6000,
            vision=None,
            vision_source="",
        )
    assert refused.value.message.startswith(
        "m: not called: big.py is 9,000 tokens, more than its share (5,960 tokens) of m's 8,000-token"
    )


def test_an_image_is_refused_by_a_model_that_cannot_read_it_and_sent_to_one_that_can() -> None:
    with pytest.raises(InputNotSent, match=r"does not read images \(per the model map\)"):
        fit(
            Attached(items=(IMAGE,)),
            model="m",
            window=8000,
            room=6000,
            vision=False,
            vision_source="model map",
        )
    with pytest.raises(InputNotSent, match=r"unknown \(set models.m.vision: true if it does\)"):
        fit(Attached(items=(IMAGE,)), model="m", window=8000, room=6000, vision=None, vision_source="")
    fitted = fit(
        Attached(items=(IMAGE,)), model="m", window=8000, room=6000, vision=True, vision_source="config"
    )
    assert [i.data_url() for i in fitted.images] == ["data:image/png;base64,AAAA"] and fitted.text == ""


def test_images_that_do_not_fit_the_window_are_refused_saying_how_many_tokens_they_need() -> None:
    # 1024x1024 costs an OpenAI model 765 tokens (4 tiles), an Anthropic one 1,399 (w x h / 750).
    with pytest.raises(InputNotSent, match=r"2 image\(s\) need ~1,530 tokens"):
        fit(
            Attached(items=(IMAGE, IMAGE)),
            model="m",
            window=2000,
            room=1500,
            vision=True,
            vision_source="config",
            family="openai",
        )
    with pytest.raises(InputNotSent, match=r"2 image\(s\) need ~2,798 tokens"):
        fit(
            Attached(items=(IMAGE, IMAGE)),
            model="m",
            window=4000,
            room=2700,
            vision=True,
            vision_source="config",
            family="anthropic",
        )


def test_each_image_is_counted_by_the_rule_of_the_family_of_the_model_it_goes_to() -> None:
    attached = Attached(items=(IMAGE,))
    for family in ("openai", "anthropic", "other"):
        fitted = fit(
            attached, model="m", window=8000, room=6000, vision=True, vision_source="", family=family
        )
        assert [p.tokens for p in fitted.images] == [image_tokens((1024, 1024), family)]
    unread = IMAGE.model_copy(update={"width": None, "height": None, "tokens": most_tokens(None)})
    fitted = fit(Attached(items=(unread,)), model="m", window=8000, room=6000, vision=True, vision_source="")
    assert [p.tokens for p in fitted.images] == [3279]  # the most an image can cost: 1568 x 1568 / 750


def test_a_model_reading_what_others_saw_gets_the_text_without_the_images_and_a_note_saying_so() -> None:
    notes_file = text("notes.md", 50)
    attached = Attached(items=(IMAGE, notes_file)).seen_by("the members")
    fitted = fit(attached, model="j", window=8000, room=4000, vision=False, vision_source="config")
    assert fitted.images == ()
    assert notes_file.text is not None and notes_file.text in fitted.text
    assert (
        "[Chorus: 1 image(s) attached to the question (dot.png) were shown to the members, not to you; "
        "you have not seen them. Rely on the text and on what they answered.]"
    ) in fitted.text
    assert fitted.notes == (
        "j: sent without the 1 image(s) the members saw (it does not read images (per the config)); "
        "its prompt says so",
    )
    # The same inputs as the members are given them: a member that cannot see is still not called.
    with pytest.raises(InputNotSent, match="j: not called: 1 image"):
        fit(Attached(items=(IMAGE,)), model="j", window=8000, room=4000, vision=False, vision_source="config")
    # And one that can see is sent the images, with no note.
    seen = fit(attached, model="v", window=8000, room=4000, vision=True, vision_source="config")
    assert len(seen.images) == 1 and "[Chorus:" not in seen.text and seen.notes == ()


def test_messages_that_leave_no_room_are_named_as_the_reason_not_the_images() -> None:
    with pytest.raises(InputNotSent) as refused:
        fit(
            Attached(items=(text("a.md", 50),)),
            model="m",
            window=3000,
            room=-10,
            vision=None,
            vision_source="",
        )
    assert str(refused.value) == (
        "m: not called: its messages and the answer fill its 3,000-token context window, "
        "leaving no room for the attached files"
    )
