"""Where weights come from: the one parser and resolver of ``hf-hub:`` references (used by
the open_clip encoders and by CLIP training), and the choice of a checkpoint among files.

``hf-hub:org/name`` names a repo, ``hf-hub:org/name/path/file.pt`` one file in it (e.g.
PathGen-CLIP-L's ``jamessyx/PathGen-CLIP-L/pathgen-clip-l.pt``, whose file has a custom name).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import EncoderError, hub_revision_of

HF_HUB_PREFIX = "hf-hub:"
CKPT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
# open_clip's own file names, in its order of preference (safetensors first).
PREFERRED_CHECKPOINTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
OPEN_CLIP_CONFIG = "open_clip_config.json"


def pick_checkpoint(files: list[str], where: str) -> str:
    """open_clip's file name when present, else the only weights file; else an error."""
    for name in PREFERRED_CHECKPOINTS:
        if name in files:
            return name
    cands = [f for f in files if f.endswith(CKPT_SUFFIXES)]
    if len(cands) == 1:
        return cands[0]
    raise EncoderError(f"{where}: cannot choose a checkpoint among {cands or 'no weight files'}; "
                       "name the file explicitly, e.g. 'hf-hub:org/name/file.pt'")


def parse_hf_hub(value: str) -> tuple[str, str | None]:
    """'hf-hub:org/name[/file]' -> ('org/name', 'file' or None)."""
    parts = value[len(HF_HUB_PREFIX):].split("/")
    if not value.startswith(HF_HUB_PREFIX) or len(parts) < 2:
        raise EncoderError(f"'{value}' is not 'hf-hub:org/name' or 'hf-hub:org/name/file'")
    return "/".join(parts[:2]), "/".join(parts[2:]) or None


@dataclass(frozen=True)
class HubWeights:
    """A resolved ``hf-hub:`` reference.

    kind 'schema': the repo ships an open_clip config; ``target`` is the model name
    ('hf-hub:org/name') for open_clip to load config and weights. kind 'file': ``target`` is
    the local path of the downloaded checkpoint. ``identity`` pins the commit."""

    kind: str
    target: str
    identity: str


def resolve_hf_hub(value: str, revision: str | None = None, *, schema: bool = True) -> HubWeights:
    """Resolve (downloading into the Hugging Face cache) an ``hf-hub:`` reference.

    ``schema=False`` always yields a checkpoint file (for callers that keep their own
    architecture); a repo named without a file then gives open_clip's checkpoint, as
    ``open_clip.pretrained.download_pretrained_from_hf`` does, else its only weights file."""
    repo, filename = parse_hf_hub(value)
    try:
        if filename is not None:
            path = _download(repo, filename, revision)
        else:
            found = _repo_default(repo, revision, schema)
            if isinstance(found, HubWeights):
                return found
            filename, path = found
    except EncoderError:
        raise
    except Exception as err:  # network/auth/offline: say what to do instead
        raise EncoderError(
            f"cannot fetch '{value}' from the Hugging Face Hub ({type(err).__name__}: {err}). "
            "Check the network / HF_TOKEN, or download the checkpoint and set `pretrained` to its "
            "local path.") from err
    rev = hub_revision_of(path) or revision or "main"
    return HubWeights("file", path, f"{HF_HUB_PREFIX}{repo}/{filename}@{rev}")


def _download(repo: str, filename: str, revision: str | None) -> str:
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo, filename, revision=revision)


def _repo_default(repo: str, revision: str | None, schema: bool) -> HubWeights | tuple[str, str]:
    """What a repo named without a file holds: the repo as an open_clip model name when it
    ships an open_clip config (and ``schema``), else (file name, local path) of its checkpoint.

    Without ``schema``, open_clip's file names are tried first (straight from the cache when
    offline), then the repo's listing."""
    from huggingface_hub import list_repo_files

    where = f"{HF_HUB_PREFIX}{repo}"
    if schema:
        files = list_repo_files(repo, revision=revision)
        if OPEN_CLIP_CONFIG in files:
            rev = hub_revision_of(_download(repo, OPEN_CLIP_CONFIG, revision)) or revision or "main"
            return HubWeights("schema", where, f"{where}@{rev}")
    else:
        for name in PREFERRED_CHECKPOINTS:
            try:
                return name, _download(repo, name, revision)
            except Exception:  # absent (or unreachable): the listing below says which
                pass
        files = list_repo_files(repo, revision=revision)
    name = pick_checkpoint(files, where)
    return name, _download(repo, name, revision)


# -- the Hub refusing access (gated weights) -------------------------------------------------
HF_TOKEN_VAR = "HF_TOKEN"


def hub_refusal(err: BaseException) -> str | None:
    """Why the Hugging Face Hub refused a download ('gated', '401', '403'), found anywhere in
    ``err``'s cause chain (timm and transformers wrap the hub's error); None otherwise."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if type(e).__name__ == "GatedRepoError":
            return "gated"
        code = getattr(getattr(e, "response", None), "status_code", None)
        if code in (401, 403):
            return str(code)
        text = str(e).lower()
        if "gated repo" in text or "401 client error" in text or "403 client error" in text:
            return "gated"
        e = e.__cause__ or e.__context__
    return None


def hub_access_error(name: str, repo: str, card: str | None, err: BaseException,
                     refusal: str) -> EncoderError:
    """The error for a refused download: the model page to request access on and the token
    variable to set."""
    page = card or f"https://huggingface.co/{repo}"
    return EncoderError(
        f"encoder '{name}': the Hugging Face Hub refused the weights of {repo} ({refusal}: "
        f"{type(err).__name__}). They are gated: accept the terms on {page} with your Hugging "
        f"Face account, then set {HF_TOKEN_VAR} to a read token of that account where the jobs "
        "run (or `hf auth login`); or download the weights and set `pretrained` to the local "
        "file or folder.")


def hub_fetch_error(name: str, repo: str, err: BaseException) -> EncoderError:
    """The error for a download that failed for another reason (network, offline, wrong id)."""
    return EncoderError(
        f"encoder '{name}': cannot fetch {repo} from the Hugging Face Hub ({type(err).__name__}: "
        f"{err}). Check the id, the network and {HF_TOKEN_VAR}; offline, fill the Hugging Face "
        "cache first (HF_HUB_OFFLINE=1 then reads it) or set `pretrained` to the local weights.")
