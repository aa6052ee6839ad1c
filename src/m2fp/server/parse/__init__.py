"""One request's bytes -> answer: upload reader and validator, query, the bounded queue, the
parse service and the rendered response."""
