# A production image: runs `profilegate serve` against MONGODB_URI (a replica set or Atlas).
FROM python:3.13-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.13-slim
RUN useradd --create-home --uid 10001 profilegate
COPY --from=build /install /usr/local
USER profilegate
ENV PROFILEGATE_ENV=production \
    PROFILEGATE_HOST=0.0.0.0 \
    PROFILEGATE_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"
CMD ["profilegate", "serve"]
