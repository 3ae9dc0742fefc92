"""Adds the writers' new batches (data/parts/*.jsonl, not kept in git) to data/posts.csv.

Run once when posts are added: `python data/assemble.py`. Posts already in posts.csv keep their id and
split, so the test split stays fixed; new posts get the next ids, and 15% of them (stratified by intent and
high urgency, fixed seed) join the test split.
"""

import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

HERE = Path(__file__).parent
POSTS = HERE / "posts.csv"
COLUMNS = ["id", "text", "intent", "also", "urgency", "domain", "channel", "split"]


def key(texts: pd.Series) -> pd.Series:
    """Same words once @handles and links are masked ("@JetBlue ok" / "@united ok") count as one post."""
    return texts.str.lower().str.replace(r"@\w+|https?://\S+", "@", regex=True).str.split().str.join(" ")


def main() -> int:
    old = pd.read_csv(POSTS, keep_default_na=False, dtype={"urgency": int})
    rows = []
    for part in sorted((HERE / "parts").glob("*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["text"] = " ".join(row["text"].split())
                rows.append(row)
    new = pd.DataFrame(rows, columns=COLUMNS[1:-1])
    new["also"] = new["also"].fillna("")
    known = set(key(old["text"]))
    new_keys = key(new["text"])
    repeated = new_keys.isin(known) | new_keys.duplicated()
    new = new[~repeated].reset_index(drop=True)
    if new.empty:
        print(f"no new posts ({int(repeated.sum())} already in posts.csv)")
        return 0
    last = int(old["id"].str[2:].astype(int).max())
    new["id"] = [f"st{i:05d}" for i in range(last + 1, last + 1 + len(new))]
    strata = new["intent"] + "-" + (new["urgency"].astype(int) >= 2).astype(str)
    strata = strata.where(strata.map(strata.value_counts()) >= 2, new["intent"] + "-False")  # a lone one joins the rest
    _, test = train_test_split(new.index, test_size=0.15, stratify=strata, random_state=20261126)
    new["split"] = "train"
    new.loc[test, "split"] = "test"
    pd.concat([old, new[COLUMNS]], ignore_index=True).to_csv(POSTS, index=False)
    print(f"added {len(new)} posts ({int(repeated.sum())} repeats dropped), {len(test)} of them to the test split; "
          f"{len(old) + len(new)} in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
