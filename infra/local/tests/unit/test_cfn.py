from __future__ import annotations

from pathlib import Path

import pytest

from tracerstack import TEMPLATES, cfn
from tracerstack.bootstrap import _CREATORS, SKIPPED_TYPES, TEMPLATE_ORDER


def _resolver(**refs: str) -> cfn.Resolver:
    return cfn.Resolver(
        parameters={"Stage": "dev", "AWS::AccountId": "111"},
        refs=refs,
        attributes={"Queue": {"Arn": "arn:aws:sqs:q"}},
        exports={"covidtracer-dev-Table": "tbl"},
        conditions={"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Stage"}, "dev"),
        ({"Fn::Sub": "covidtracer-${Stage}-feed-${AWS::AccountId}"}, "covidtracer-dev-feed-111"),
        ({"Fn::Sub": "${Queue.Arn}/x"}, "arn:aws:sqs:q/x"),
        ({"Fn::Sub": ["${A}-${Stage}", {"A": "a"}]}, "a-dev"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:q"),
        ({"Fn::Join": ["/", ["a", {"Ref": "Stage"}]]}, "a/dev"),
        ({"Fn::ImportValue": {"Fn::Sub": "covidtracer-${Stage}-Table"}}, "tbl"),
        ({"Fn::If": ["IsProd", "big", "small"]}, "small"),
        ({"deep": [{"Ref": "Stage"}]}, {"deep": ["dev"]}),
        ({"a": 1, "b": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]}}, {"a": 1}),
    ],
)
def test_intrinsic_functions_resolve(value: object, expected: object) -> None:
    assert _resolver()(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"Ref": "Missing"},
        {"Fn::GetAtt": ["Queue", "Url"]},
        {"Fn::ImportValue": "nope"},
        {"Fn::Base64": "x"},
    ],
)
def test_what_cannot_be_resolved_is_an_error_not_a_guess(value: object) -> None:
    with pytest.raises(cfn.TemplateError):
        _resolver()(value)


def test_yaml_short_forms_load_as_intrinsic_functions(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n  A:\n    Type: X\n    Properties:\n"
        "      N: !Sub a-${Stage}\n      Q: !GetAtt Queue.Arn\n      R: !Ref Stage\n"
    )
    properties = cfn.load(path)["Resources"]["A"]["Properties"]
    assert properties == {
        "N": {"Fn::Sub": "a-${Stage}"},
        "Q": {"Fn::GetAtt": ["Queue", "Arn"]},
        "R": {"Ref": "Stage"},
    }


def test_every_resource_type_in_the_templates_is_created_or_knowingly_skipped() -> None:
    types = {
        resource["Type"]
        for name in TEMPLATE_ORDER
        for resource in cfn.load(TEMPLATES / f"{name}.yaml")["Resources"].values()
    }
    assert types <= set(_CREATORS) | SKIPPED_TYPES


@pytest.mark.parametrize(
    ("module", "constant"),
    [
        ("covidtracer.enfkeys.service", "GUESS_METRIC"),
        ("covidtracer.diary.service", "GUESS_METRIC"),
        ("covidtracer.signin.service", "CODES_METRIC"),
    ],
)
def test_every_signal_a_limit_reports_has_an_alarm(module: str, constant: str) -> None:
    """Issue 19: the limits in all refuse nobody; they are metrics an operator is alarmed
    on. The metric the code writes and the one the alarm watches must be the same."""
    import importlib

    name = getattr(importlib.import_module(module), constant)
    resources = cfn.load(TEMPLATES / "observability.yaml")["Resources"]
    watching = [
        r["Properties"] for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == name
    ]  # fmt: skip
    assert len(watching) == 1, name
    assert watching[0]["Namespace"] == "CovidTracer"
    assert watching[0]["Dimensions"] == [{"Name": "Stage", "Value": {"Ref": "Stage"}}]
