"""OpenAPI: read a service's document (`spec`), find its resources (`resources`), write a pack
from it (`generate`, for `scaleready init`)."""
