"""Where the data comes from: the ibl.ai Data Manager analytics API, or the built-in demo API.

``payloads`` (the three endpoints' answers as pydantic models), ``client`` (the httpx client: one
semaphore, the run's deadline; the transport is the seam), ``retry`` (which outcomes are retried
and how long to wait), ``answers`` (an answer into its model, or an error saying what came
instead), ``collect`` (everything one report needs, never partial) and ``mock/`` (the demo API,
served in-process or over loopback HTTP).

May import: ``reports.report`` (the report model it fills, periods) and the base modules
(``config``, ``errors``, ``logs``, ``atomic``). Never ``delivery``, ``state``, ``schedule``,
``execute`` or the top-level run.
"""
