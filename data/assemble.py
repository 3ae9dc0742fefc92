"""Assembles data/posts.csv from the writers' batches (data/parts/*.jsonl, not kept in git).

Run once when posts are added: `python data/assemble.py`. Ids are stable for posts already in
posts.csv; the test split (15%, stratified by intent and high urgency) is drawn with a fixed seed.
"""

import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

HERE = Path(__file__).parent
COLUMNS = ["id", "text", "intent", "also", "urgency", "domain", "channel", "split"]


def main() -> int:
    rows = []
    for part in sorted((HERE / "parts").glob("*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["text"] = " ".join(row["text"].split())
                rows.append(row)
    df = pd.DataFrame(rows)
    df["also"] = df["also"].fillna("")
    # Same words once @handles and links are masked ("@JetBlue ok" / "@united ok"): keep one.
    key = df["text"].str.lower().str.replace(r"@\w+|https?://\S+", "@", regex=True).str.split().str.join(" ")
    dropped = int(key.duplicated().sum())
    df = df[~key.duplicated()].reset_index(drop=True)
    df["id"] = [f"st{i:05d}" for i in range(1, len(df) + 1)]
    strata = df["intent"] + "-" + (df["urgency"].astype(int) >= 2).astype(str)
    _, test = train_test_split(df.index, test_size=0.15, stratify=strata, random_state=20261125)
    df["split"] = "train"
    df.loc[test, "split"] = "test"
    df[COLUMNS].to_csv(HERE / "posts.csv", index=False)
    print(f"wrote {len(df)} posts ({dropped} exact duplicates dropped), {len(test)} in the test split")
    return 0


if __name__ == "__main__":
    sys.exit(main())
