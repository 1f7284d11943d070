"""The public API's docstrings follow the numpydoc standard, checked by numpydoc itself.

What is checked, for every callable in ``napari_kmeans.__all__`` (the lazily exported console
functions included) and every public method of the exported classes:

- numpydoc's own validator (:func:`numpydoc.validate.validate`), restricted to the codes
  below: the rest of its codes are matters of taste (ES01 extended summary, SA01 See Also,
  SS05 infinitive verb, PR08/PR09 capitals and full stops of descriptions, ...) that this
  project does not impose;
- the type slot of every Parameters / Returns / Raises / Attributes entry is a type, not a
  sentence: short, with no ``": "`` or ``"; "`` inside and no final full stop (the defect
  numpydoc's PR05 sees only in Parameters), and the entry has a description indented below
  it (a description written in the type slot leaves none).

Classes are records: the fields of their constructor may be documented under Parameters or
Attributes (numpydoc allows either for a class), so PR01/PR02 are checked here against both
sections instead of numpydoc's Parameters-only check. Properties need only a summary.
"""

import inspect

import pytest

pytest.importorskip("numpydoc")
from numpydoc.docscrape import NumpyDocString  # noqa: E402
from numpydoc.validate import validate  # noqa: E402

import napari_kmeans as nk  # noqa: E402

# numpydoc validation codes enforced on the public API
CODES = {
    "GL01": "summary right after the opening quotes (or on the next line)",
    "GL02": "closing quotes on their own line",
    "GL03": "no double blank lines",
    "GL06": "only the sections numpydoc knows",
    "GL07": "sections in numpydoc's order",
    "GL08": "a docstring",
    "SS01": "a one-line summary",
    "SS03": "the summary ends with a full stop",
    "PR01": "every parameter of the signature documented",
    "PR02": "no documented parameter missing from the signature",
    "PR03": "parameters documented in the order of the signature (as help() shows it)",
    "PR04": "every parameter has a type",
    "PR05": "no type ends with a full stop",
    "PR07": "every parameter has a description",
    "PR10": "a space on both sides of the colon between name and type",
    "RT01": "a Returns section when something is returned",
    "RT03": "every returned value has a description",
    "EX01": "an Examples section",
}
# for properties: what an attribute needs
PROPERTY_CODES = {"GL01", "GL02", "GL03", "GL06", "GL08", "SS01", "SS03"}
# for classes the parameter codes are checked below against Parameters and Attributes
CLASS_SKIPPED = {"PR01", "PR02", "RT01"}
TYPE_SECTIONS = ("Parameters", "Other Parameters", "Returns", "Yields", "Raises", "Attributes")
MAX_TYPE_LENGTH = 60


def type_slot_problems(docstring: str) -> list[str]:
    """Entries whose type slot holds a sentence, or that have no description below it."""
    doc = NumpyDocString(docstring)
    problems = []
    for section in TYPE_SECTIONS:
        for entry in doc[section]:
            slot = entry.type
            if len(slot) > MAX_TYPE_LENGTH or ": " in slot or "; " in slot or slot.endswith("."):
                problems.append(f"{section} {entry.name!r}: sentence in the type slot: {slot!r}")
            elif not "".join(entry.desc).strip():
                problems.append(f"{section} {entry.name!r} ({slot!r}) has no description")
    return problems


def _public_objects():
    for name in nk.__all__:
        obj = getattr(nk, name)
        if not callable(obj):
            continue  # __version__
        yield f"{obj.__module__}.{obj.__qualname__}", obj, "callable"
        if not inspect.isclass(obj) or issubclass(obj, Exception):
            continue
        for member, value in vars(obj).items():
            if member.startswith("_"):
                continue
            qualified = f"{obj.__module__}.{obj.__qualname__}.{member}"
            if isinstance(value, property):
                yield qualified, value, "property"
            elif inspect.isfunction(value) or isinstance(value, classmethod | staticmethod):
                yield qualified, getattr(obj, member), "callable"


PUBLIC = list(_public_objects())


def _signature_names(obj) -> list[str]:
    try:
        parameters = inspect.signature(obj).parameters.values()
    except ValueError:  # a builtin constructor, e.g. an exception's
        return []
    stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return [stars.get(p.kind, "") + p.name for p in parameters if p.name not in ("self", "cls")]


def _documented_names(doc: NumpyDocString, sections) -> list[str]:
    return [name for section in sections for p in doc[section] for name in p.name.split(", ")]


def test_the_public_api_is_collected():
    names = {qualified.rsplit(".", 1)[-1] for qualified, _, _ in PUBLIC}
    assert {"segment", "fit", "kmeans", "predict", "segment_layer", "KMeansModel"} <= names


@pytest.mark.parametrize(("name", "obj", "kind"), PUBLIC, ids=[p[0] for p in PUBLIC])
def test_public_docstring_is_numpydoc(name, obj, kind):
    result = validate(name)
    codes = PROPERTY_CODES if kind == "property" else set(CODES)
    if inspect.isclass(obj):
        codes -= CLASS_SKIPPED
    problems = [f"{code} {message}" for code, message in result["errors"] if code in codes]

    doc = NumpyDocString(inspect.getdoc(obj) or "")
    if inspect.isclass(obj):
        expected = _signature_names(obj)
        documented = _documented_names(doc, ("Parameters", "Other Parameters", "Attributes"))
        missing = [n for n in expected if n not in documented]
        unknown = [
            n for n in _documented_names(doc, ("Parameters",)) if n not in expected and expected
        ]
        problems += [f"PR01 {n!r} not documented" for n in missing]
        problems += [f"PR02 {n!r} is not a parameter" for n in unknown]
    problems += type_slot_problems(inspect.getdoc(obj) or "")
    assert not problems, f"{name}:\n" + "\n".join(problems)


# docstrings of this project as they once were: descriptions in the type slot
OLD_STYLE = [
    """Segment.

    Parameters
    ----------
    n_clusters : number of clusters k, 1 <= k <= number of distinct feature vectors.
    """,
    """Run k-means.

    Parameters
    ----------
    X : (n, d) array of real numbers. float32 rows are processed in float32, anything else in
        float64.
    """,
    """Cluster 1-D values.

    Returns
    -------
    inertia : the minimal weighted sum of squared deviations
    """,
    """Suggest k.

    Attributes
    ----------
    seed : None, int or ``numpy.random.Generator``; the same seed gives the same result
    """,
]


@pytest.mark.parametrize("docstring", OLD_STYLE)
def test_a_description_in_the_type_slot_is_refused(docstring):
    assert type_slot_problems(docstring)


def test_a_numpydoc_entry_is_accepted():
    docstring = """Segment.

    Parameters
    ----------
    n_clusters : int
        Number of clusters k: 1 <= k <= number of distinct feature vectors.
    channel_axis : "auto", "rgb", None or int
        Where the channels are.
    """
    assert type_slot_problems(docstring) == []
