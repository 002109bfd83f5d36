# tracr's dependencies in /opt/venv on the offline base (tools/docker/build_images.sh deps).
# The context holds requirements.txt (pinned from the host's .venv) and wheels/ (built on the host).
ARG BASE=tracr-base:bookworm
FROM ${BASE}
COPY requirements.txt /tmp/requirements.txt
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels -r /tmp/requirements.txt \
 && rm -rf /tmp/wheels
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
