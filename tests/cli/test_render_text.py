"""Text that comes from users and models is printed as it is: never read as rich markup."""

from __future__ import annotations

import io

from rich.console import Console

from dspyops.demo_pipeline import triage_spec
from dspyops.proto import events_pb2 as pb
from dspyops.proto import gateway_pb2 as gpb
from dspyops.proto import optimizer_pb2 as opb
from dspyops.render.predictions import prediction_line
from dspyops.render.registry import version_lines


def printed(text: str, **kwargs: object) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(text, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def test_a_model_output_that_looks_like_markup_is_printed_verbatim() -> None:
    # Failed before: rich.errors.MarkupError: closing tag '[/]' ... has nothing to close
    response = gpb.PredictResponse(
        outputs={"label": "[/] [red]x"}, program="p", version="1", prediction_id="a" * 32
    )
    line = printed(prediction_line(response))
    assert "label='[/] [red]x'" in line
    assert "a" * 32 in line  # the whole id: `dspyops explain` takes it as printed


def test_a_pipeline_version_shows_its_stages_and_typed_fields() -> None:
    spec = triage_spec("help", k=2)
    version = opb.ProgramVersion(
        program="triage", version="1.0.0", spec=spec, lineage=pb.Lineage(corpora={"search": "ab" * 32})
    )
    text = "".join(printed(line, markup=False, highlight=False) for line in version_lines(version))
    assert "search: Retrieve corpus 'help', k 2 (query<-input.text)" in text
    assert "classify: Predict 'text, passages: list[str] -> label'" in text
    assert "outputs label<-classify.label" in text
    assert "search searches corpus sha256 abababab" in text
