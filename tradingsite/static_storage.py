"""The production storage of static files: ServeStatic's compressed manifest, with ES module imports hashed too.

The live page is a graph of ES modules (``live/static/live/``) that import each other by relative path. Django's
manifest storage rewrites those imports to the siblings' hashed names only when asked
(``support_js_module_import_aggregation``); without it a hashed ``live.js`` would load ``./chart.js`` under its
plain name, which is cached for a short time only and may belong to another release.
"""

from __future__ import annotations

from servestatic.storage import CompressedManifestStaticFilesStorage


class ModuleManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Compressed, content-hashed static files whose ES module imports name the hashed files."""

    support_js_module_import_aggregation = True
    # Each pass settles one more level of the import graph (a module's hash covers its imports' hashed names);
    # Django's 5 only just cover the live page's depth, so there is room for one more module layer or two.
    max_post_process_passes = 8
