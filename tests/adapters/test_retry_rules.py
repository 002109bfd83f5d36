"""Each family's own retry rule, decided on replies alone (the engine test drives olmOCR's through a real run)."""

from __future__ import annotations

from tracr.adapters.registry import OLMOCR_TEMPERATURES, adapter_by_name
from tracr.adapters.retry_rules import CHANDRA_MAX_RETRIES, OLMOCR_MAX_ATTEMPTS, first_attempt, judge_reply
from tracr.errors import ErrorClass

FRONT = "---\nprimary_language: en\nis_rotation_valid: {valid}\nrotation_correction: {turn}\nis_table: False\nis_diagram: False\n---\nBody text."
CHANDRA_OK = '<div data-bbox="0 0 10 10" data-label="Text"><p>Revenue grew by twelve percent.</p></div>'
CHANDRA_LOOP = '<div data-bbox="0 0 10 10" data-label="Text"><p>' + "the same words again " * 200 + "</p></div>"


def test_olmocr_climbs_its_temperature_ladder_then_fails_with_its_class():
    olmocr = adapter_by_name("olmocr-2")
    attempt = first_attempt(olmocr)
    temperatures = [attempt.temperature]
    for _ in range(OLMOCR_MAX_ATTEMPTS - 1):
        verdict = judge_reply(olmocr, attempt, "no front matter", "stop")
        assert verdict.retry is not None and verdict.page is None
        attempt = verdict.retry
        temperatures.append(attempt.temperature)
    assert tuple(temperatures) == OLMOCR_TEMPERATURES
    last = judge_reply(olmocr, attempt, "no front matter", "stop")
    assert last.failure is ErrorClass.UNPARSEABLE and "8 attempts" in last.reason and "front matter" in last.reason


def test_olmocr_cut_off_reply_is_not_valid_even_when_it_parses():
    olmocr = adapter_by_name("olmocr-2")
    verdict = judge_reply(olmocr, first_attempt(olmocr), FRONT.format(valid="True", turn=0), "length")
    assert verdict.retry is not None and verdict.retry.number == 2


def test_olmocr_rotation_accumulates_and_the_last_valid_reply_is_kept():
    olmocr = adapter_by_name("olmocr-2")
    first = judge_reply(olmocr, first_attempt(olmocr), FRONT.format(valid="False", turn=90), "stop")
    assert first.retry is not None and first.retry.rotation == 90
    second = judge_reply(olmocr, first.retry, FRONT.format(valid="False", turn=270), "stop")
    assert second.retry is not None and second.retry.rotation == 0  # (90 + 270) % 360, as olmOCR's pipeline sums them
    attempt = second.retry
    while attempt.number < OLMOCR_MAX_ATTEMPTS:
        verdict = judge_reply(olmocr, attempt, "garbage", "stop")
        assert verdict.retry is not None
        attempt = verdict.retry
    final = judge_reply(olmocr, attempt, "garbage", "stop")
    assert final.page is not None and final.page.markdown == "Body text."  # the last valid reply wins over failing


def test_chandra_retries_a_repeating_tail_hotter_then_keeps_the_last_answer():
    chandra = adapter_by_name("chandra")
    attempt = first_attempt(chandra)
    assert (attempt.temperature, attempt.top_p) == (0.0, 0.1)
    assert judge_reply(chandra, attempt, CHANDRA_OK, "stop").page is not None
    for _ in range(CHANDRA_MAX_RETRIES):
        verdict = judge_reply(chandra, attempt, CHANDRA_LOOP, "stop")
        assert verdict.retry is not None and (verdict.retry.temperature, verdict.retry.top_p) == (0.3, 0.95)
        attempt = verdict.retry
    kept = judge_reply(chandra, attempt, CHANDRA_LOOP, "stop")
    assert kept.page is not None and "the same words again" in kept.page.markdown


def test_deepseek_drops_a_page_with_no_end_of_sequence():
    deepseek = adapter_by_name("deepseek-ocr")
    cut = judge_reply(deepseek, first_attempt(deepseek), "<|ref|>text<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\nloop loop loop", "length")
    assert cut.failure is ErrorClass.REPETITION and "end of sequence" in cut.reason
    whole = judge_reply(deepseek, first_attempt(deepseek), "<|ref|>text<|/ref|><|det|>[[1, 2, 3, 4]]<|/det|>\nRevenue.", "stop")
    assert whole.page is not None and whole.page.markdown == "Revenue."


def test_a_family_without_a_rule_fails_an_unreadable_reply_at_once():
    dots = adapter_by_name("dots.ocr")
    verdict = judge_reply(dots, first_attempt(dots), "I am sorry, I cannot help with that.", "stop")
    assert verdict.failure is ErrorClass.UNPARSEABLE and verdict.reason.startswith("not dots-layout output")
