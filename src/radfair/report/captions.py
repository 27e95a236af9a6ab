"""Caption registry: file-name pattern -> caption, per folder kind, with a generic fallback.

Add an entry here when a run starts writing a new table or figure; a file that matches no entry still
appears in the report, with the generic caption. Patterns are ``fnmatch`` patterns on the file name
(``table1*.md``, ``fig2_*.png``); the first match wins. ``{stem}`` and ``{parts[i]}`` (the stem split on
``_``) may be used in a caption.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

RELIABILITY = ("Reliability diagram by {rest}: one panel per finding; x axis = mean predicted score in each of the "
               "equal-width score bins, y axis = observed positive rate in that bin; one line per group with a dot per "
               "non-empty bin; dashed diagonal = perfect calibration (above it the model under-predicts, below it over-predicts).")

CAPTIONS: dict[str, list[tuple[str, str]]] = {
    "audit": [
        ("reliability_*.png", RELIABILITY),
        ("forest_*.png", "Forest plot by {rest}: per finding (rows, up to 8, largest gap first), each group's TPR (left) and "
                         "FPR (right) at the shared threshold with its 95% patient-bootstrap interval; the dashed line is the "
                         "overall rate; n+ = positives in test. A group left of the others on TPR is under-served; right of "
                         "them on FPR, over-called."),
        ("roc_*.png", "ROC curves by {rest}: per finding, each group's ROC curve and its operating point (X) at the shared "
                      "threshold. Points apart on overlapping curves: the threshold falls differently for the groups "
                      "(a per-group calibration or threshold issue); curves apart: the model ranks one group worse."),
    ],
    "emb-vs-img": [
        ("table1*.md", "Table 1 layout: images, patients and each attribute's group shares per dataset (shares of the images "
                       "with a known value; 'unknown' = share of all images without one)."),
        ("table2*.md", "Table 2 layout: images per split and dataset of the study's patient-level split, the paper's counts "
                       "beside them."),
        ("table3*.md", "Table 3 layout: mean test AUROC over seeds per finding (rows) and dataset x arm (columns), with "
                       "95% intervals over seeds and test patients; bold = the higher arm where the paired difference is "
                       "significant after Holm."),
        ("table4*.md", "Table 4 layout: average TPR-disparity gap per attribute, dataset and arm with a 95% max-t interval "
                       "over seeds and test patients and the bias-corrected estimate, the findings with the lowest and highest "
                       "gap, and the groups most often (un)favoured (counting convention in study.json); bold = the lower "
                       "average gap where the paired emb − img difference is significant after Holm."),
        ("fig1_*.png", "Figure 1 ({parts[1]}, arm {parts[2]}, attribute {rest3}): TPR disparity (y axis; 0 = the group's TPR "
                       "equals the reference) per finding (x axis, sorted by increasing gap) and group (colour). Marker = "
                       "seed-mean disparity, marker area proportional to the group's share of positives; vertical bars = "
                       "Student-t 95% interval over seeds; horizontal line at 0 = no disparity."),
    ],
    "reconstruction": [
        ("table1*.md", "Table 1 layout (as written by the study run)."),
        ("table2*.md", "Table 2 layout (as written by the study run)."),
        ("table3*.md", "Table 3 layout (as written by the study run)."),
        ("table4*.md", "Table 4 layout (as written by the study run)."),
        ("table5*.md", "Table 5 ({rest}): patients of the X-ray dataset per subgroup, sex x age at the median (rows) by race "
                       "group (columns; the race scheme in study.json conventions), over all splits then per split."),
        ("table6*.md", "Table 6 ({rest}): patients of UCSF-PDGM per subgroup, age at the median (rows) by sex (columns), over "
                       "all splits then per split."),
        ("table7*.md", "Table 7 layout (as written by the study run)."),
        ("table8*.md", "Table 8 layout (as written by the study run)."),
        ("examples_*.png", "Example images ({rest}): clean, degraded and reconstructed versions of the same test images, as "
                           "written by the study run; panel titles name the level and the reconstructor."),
        ("gradcam_*.png", "Grad-CAM saliency ({rest}): where the frozen classifier looks on clean and reconstructed versions of "
                          "the same test images (warmer = larger contribution to the predicted finding), as written by the study run."),
        ("fig2_performance*.png", "Figure 2: downstream performance (CheXpert: mean AUROC over its findings; UCSF-PDGM: segmentation "
                       "Dice) and image quality (PSNR) against the noise level, per reconstructor, each as % of its reference; "
                       "the degraded input and the clean images as references."),
        ("fig10_classification*.png", "Figure 10: UCSF-PDGM classification (one panel per task: tumour type, tumour grade) AUROC "
                       "and PSNR against the noise level, per reconstructor, as % of their references (as Figure 2)."),
        ("fig3_bias_change*.png", "Figure 3: the distribution of the bias change (% of the clean value; worst-case EODD, and SER "
                       "for the segmenter) over findings, reconstructors and datasets at the middle noise level (the paper's "
                       "scope), per attribute: mass right of 0 = less fair after reconstruction."),
        ("fig4_bias_change*.png", "Figure 4 ({rest}): the change of the fairness metric from clean to reconstructed test images per finding at the middle noise level (the paper's scope: 10,000 photons) "
                       "and reconstructor, with paired patient-bootstrap 95% intervals; marks = significant after Holm within "
                       "the confirmatory family (study.json, multiple_testing)."),
        ("fig5_bias_change*.png", "Figure 5 ({rest}): the same for UCSF-PDGM at the middle acceleration (the paper's: R = 8) (slice classifier EODD/EOP, segmenter ΔDice/SER), with paired "
                       "patient-bootstrap 95% intervals; marks = significant after Holm within the confirmatory family."),
        ("fig18_bias_change*.png", "Figure 18: the distribution of the bias change as in Figure 3, with the merged race groups "
                        "(race_merged: AI/AN and NH/PI within Other) in place of race."),
        ("fig19_bias_change*.png", "Figure 19 ({rest}): the change of worst-case EODD from clean to reconstructed test images per "
                        "finding, reconstructor and mitigation strategy, as Figure 4's race panel, with the merged race groups; "
                        "paired patient-bootstrap 95% intervals (race_merged rows are exploratory: no Holm marks)."),
        ("fig11_lambda*.png", "Figure 11: the validation λ sweep of the EODD-loss mitigation: worst-case EODD and mean AUROC against λ; "
                        "the same-budget standard fine-tune dashed, the chosen λ circled."),
        ("fig12_lambda*.png", "Figure 12: the validation λ sweep of the adversarial mitigation: worst-case EODD and mean AUROC against "
                        "λ; the standard fine-tune dashed, the chosen λ circled."),
        ("fig13_lambda*.png", "Figure 13: the EODD-loss λ sweep: worst-case EODD and validation PSNR against λ (the image-quality cost)."),
        ("fig14_lambda*.png", "Figure 14: the adversarial λ sweep: worst-case EODD and validation PSNR against λ."),
        ("fig15_mitigation*.png", "Figure 15: test change of mean AUROC, Dice and PSNR of each mitigation strategy against the standard "
                        "reconstruction of the same reconstructor and level."),
        ("fig*.png", "Figure {number} of the study run ({rest}); axes, markers and bars are labelled in the figure itself."),
    ],
}

GENERIC_TABLE = "Table {name}, as written by the run (title and notes are the run's own)."
GENERIC_FIGURE = "Figure {name}, as written by the run; axes, markers and bars are labelled in the figure itself."


def caption(kind: str, path: str | Path) -> str:
    name = Path(path).name
    stem = Path(path).stem
    parts = stem.split("_")
    number = "".join(ch for ch in parts[0] if ch.isdigit()) or stem
    fields = {"number": number, "name": name, "stem": stem, "parts": parts + [""] * 4, "rest": " ".join(parts[1:]) or stem,
              "rest3": " ".join(parts[3:]) or stem}
    for pattern, text in CAPTIONS.get(kind, []):
        if fnmatch.fnmatch(name, pattern):
            return text.format(**fields)
    return (GENERIC_FIGURE if name.lower().endswith(".png") else GENERIC_TABLE).format(**fields)
