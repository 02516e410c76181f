"""Which tags read which: the order a rebuild of every tag goes in, and the tags downstream of one (the ones
a fanned-out build's join queues)."""

from crm_tags.models import Tag


def tags_in_dependency_order(tags: list[Tag]) -> list[Tag]:
    """Topological order: a tag comes after every tag its published rule reads."""
    by_slug = {t.slug: t for t in tags}
    deps = {
        t.slug: [d for d in (t.current_version.depends_on if t.current_version_id else []) if d in by_slug]
        for t in tags
    }
    ordered: list[Tag] = []
    state: dict[str, int] = {}

    def visit(slug: str) -> None:
        if state.get(slug) == 2:
            return
        if state.get(slug) == 1:  # a cycle slipped past validation: break it, never loop
            return
        state[slug] = 1
        for dep in deps[slug]:
            visit(dep)
        state[slug] = 2
        ordered.append(by_slug[slug])

    for slug in sorted(by_slug):
        visit(slug)
    return ordered


def readers() -> dict[str, list[str]]:
    """slug -> the published tags whose rule reads it."""
    readers: dict[str, list[str]] = {}
    rows = Tag.objects.filter(current_version__isnull=False).values_list(
        "slug", "current_version__depends_on"
    )
    for slug, deps in rows:
        for dep in deps or []:
            readers.setdefault(dep, []).append(slug)
    return readers


def downstream(slug: str, readers: dict[str, list[str]]) -> set[str]:
    """Every tag that reads `slug`, directly or through other tags."""
    found: set[str] = set()
    todo = [slug]
    while todo:
        for reader in readers.get(todo.pop(), []):
            if reader not in found and reader != slug:
                found.add(reader)
                todo.append(reader)
    return found
