# ReserveKit key authority: one image for `reservekit serve`, `reservekit migrate` and the other commands.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
# Only what the wheel needs (see [tool.hatch.build] in pyproject.toml); no tests, no dev extras.
COPY pyproject.toml README.md ./
COPY src ./src
COPY projections ./projections
COPY migrations ./migrations
RUN pip install . && rm -rf /build

RUN useradd --create-home --home-dir /home/reservekit --uid 10001 --user-group reservekit
USER reservekit
WORKDIR /home/reservekit
# Only used by the embedded SQLite default; compose sets RESERVEKIT_DATABASE_URL instead.
ENV RESERVEKIT_DATA_DIR=/home/reservekit/.reservekit

EXPOSE 8000
ENTRYPOINT ["reservekit"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
