"""Every exception tracr defines is a TracrError that names its class, keeping the builtin base callers catch."""

from __future__ import annotations

import pytest

from flows.model_run import RunFailed
from flows.ocr_job import JobFailed
from tasks.ocr.model_targets import ModelBlockError
from tasks.ocr.request import FatalModelError
from tasks.serving.containers import DockerUnavailable
from tasks.serving.gpu_slots import GpuRequestTooLarge
from tasks.serving.preflight import PreflightError
from tasks.serving.process import ServerStartError
from tracr.config.inputs import InputError
from tracr.config.job import ConfigError
from tracr.documents.pdf import PdfError
from tracr.errors import HINTS, ErrorClass, TracrError, error_class_of
from tracr.outputs.export import ExportError
from tracr.outputs.identifiers import InvalidIdentifier
from tracr.run.state import InvalidTransition
from tracr.servers.openai_protocol import ProtocolError
from tracr.serving.gpus import InventoryError
from tracr.serving.server_errors import ServerDied, classify_server_log
from tracr.testing import processes

CLASSES = [
    (ConfigError, ValueError, ErrorClass.CONFIG),
    (InputError, ValueError, ErrorClass.INPUT),
    (InvalidIdentifier, ValueError, ErrorClass.IDENTIFIER),
    (ExportError, ValueError, ErrorClass.EXPORT),
    (InventoryError, ValueError, ErrorClass.NO_GPU),
    (InvalidTransition, ValueError, ErrorClass.STATE),
    (PdfError, RuntimeError, ErrorClass.PDF),
    (ProtocolError, Exception, ErrorClass.BAD_REQUEST),
    (ModelBlockError, ValueError, ErrorClass.BLOCK),
    (FatalModelError, RuntimeError, ErrorClass.AUTH),
    (GpuRequestTooLarge, ValueError, ErrorClass.NOT_ENOUGH_GPUS),
    (ServerStartError, RuntimeError, ErrorClass.SERVER_START),
    (ServerDied, RuntimeError, ErrorClass.DIED_WHILE_SERVING),
    (DockerUnavailable, ServerStartError, ErrorClass.DOCKER_UNAVAILABLE),
    (PreflightError, ServerStartError, ErrorClass.SERVER_START),
    (processes.ServerStartError, RuntimeError, ErrorClass.SERVER_START),
    (JobFailed, RuntimeError, ErrorClass.UNKNOWN),
    (RunFailed, RuntimeError, ErrorClass.UNKNOWN),
]


@pytest.mark.parametrize(("cls", "base", "default"), CLASSES, ids=[c.__name__ for c, _, _ in CLASSES])
def test_each_exception_is_a_tracr_error_with_its_default_class(cls, base, default):
    assert issubclass(cls, TracrError) and issubclass(cls, base)
    assert cls.default_class == default


def test_a_raise_site_names_a_more_precise_class_and_the_hint_follows_it():
    exc = PreflightError("vllm missing", error_class=ErrorClass.VLLM_NOT_INSTALLED)
    assert exc.error_class == ErrorClass.VLLM_NOT_INSTALLED and exc.hint == HINTS[ErrorClass.VLLM_NOT_INSTALLED]
    assert str(exc) == "vllm missing" and error_class_of(exc) == ErrorClass.VLLM_NOT_INSTALLED
    assert error_class_of(KeyError("x")) == ErrorClass.UNKNOWN


def test_config_and_protocol_errors_keep_their_own_fields():
    config = ConfigError(["models: required"], source="job.yaml")
    assert config.problems == ["models: required"] and config.error_class == ErrorClass.CONFIG
    assert "invalid job config job.yaml" in str(config)
    protocol = ProtocolError(400, "bad body")
    assert protocol.status == 400 and protocol.message == "bad body" and protocol.error_class == ErrorClass.BAD_REQUEST


def test_a_generic_start_failure_is_classified_from_its_log_a_declared_cause_is_kept():
    log = "torch.OutOfMemoryError: CUDA out of memory"
    assert classify_server_log(log, declared=ErrorClass.SERVER_START).error_class == ErrorClass.OUT_OF_GPU_MEMORY
    assert classify_server_log(log, declared=ErrorClass.NO_GPU).error_class == ErrorClass.NO_GPU
    assert classify_server_log("nothing known", declared=ErrorClass.SERVER_START).hint == "see the server log"
