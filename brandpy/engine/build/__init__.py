"""The classic builder behind `POST /build` (`DOCKER_BUILDKIT=0 docker
build`): Dockerfile parsing, the build context, and the steps, each
committed as an image so an unchanged rebuild is served from cache."""
