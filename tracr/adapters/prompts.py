"""The prompts OCR model families were trained or documented with, quoted exactly.

Each is data the model learned: a changed word or newline changes its answers. The
source of each is on the line above it; docs/supported-models.md lists them too.
"""

from __future__ import annotations

__all__ = [
    "OLMOCR_V4",
    "OLMOCR_0825",
    "OLMOCR_V1",
    "DOTS_LAYOUT_ALL_EN",
    "NANONETS_OCR",
    "CHANDRA_OCR_LAYOUT",
    "OLMOCR_BENCH_BASIC",
    "OLMOCR_BENCH_FULLV3SIMPLE",
    "DOTS_IMAGE_PREFIX",
    "DEEPSEEK_GROUNDING",
    "DOCLING_PAGE",
    "MINERU_SYSTEM",
    "NANONETS_SYSTEM",
]

# olmocr/prompts/prompts.py::build_no_anchoring_v4_yaml_prompt (allenai/olmocr)
OLMOCR_V4 = (
    "Attached is one page of a document that you must process. Just return the plain text representation of this document as if you were reading it naturally. Convert equations to LateX and tables to HTML.\n"
    "If there are any figures or charts, label them with the following markdown syntax ![Alt text describing the contents of the figure](page_startx_starty_width_height.png)\n"
    "Return your output as markdown, with a front matter section on top specifying values for the primary_language, is_rotation_valid, rotation_correction, is_table, and is_diagram parameters."
)

# olmocr/prompts/prompts.py::build_no_anchoring_yaml_prompt (allenai/olmocr v0.3.x)
OLMOCR_0825 = (
    "Attached is one page of a document that you must process. Just return the plain text representation of this document as if you were reading it naturally. Convert equations to LateX and tables to markdown.\n"
    "Return your output as markdown, with a front matter section on top specifying values for the primary_language, is_rotation_valid, rotation_correction, is_table, and is_diagram parameters."
)

# olmocr/prompts/prompts.py::build_finetuning_prompt (allenai/olmocr v0.1.76); {anchor_text} is filled per page
OLMOCR_V1 = (
    "Below is the image of one page of a document, as well as some raw textual content that was previously extracted for it. Just return the plain text representation of this document as if you were reading it naturally.\n"
    "Do not hallucinate.\n"
    "RAW_TEXT_START\n"
    "{anchor_text}\n"
    "RAW_TEXT_END"
)

# dots_ocr/utils/prompts.py::prompt_layout_all_en (rednote-hilab/dots.ocr); ends with a newline
DOTS_LAYOUT_ALL_EN = (
    "Please output the layout information from the PDF image, including each layout element's bbox, its category, and the corresponding text content within the bbox.\n"
    "\n"
    "1. Bbox format: [x1, y1, x2, y2]\n"
    "\n"
    "2. Layout Categories: The possible categories are ['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title'].\n"
    "\n"
    "3. Text Extraction & Formatting Rules:\n"
    "    - Picture: For the 'Picture' category, the text field should be omitted.\n"
    "    - Formula: Format its text as LaTeX.\n"
    "    - Table: Format its text as HTML.\n"
    "    - All Others (Text, Title, etc.): Format their text as Markdown.\n"
    "\n"
    "4. Constraints:\n"
    "    - The output text must be the original text from the image, with no translation.\n"
    "    - All layout elements must be sorted according to human reading order.\n"
    "\n"
    "5. Final Output: The entire output must be a single JSON object.\n"
)

# olmocr/bench/runners/run_nanonetsocr_2.py (allenai/olmocr); the same text in docling's NANONETS_OCR2 specs
NANONETS_OCR = "Extract the text from the above document as if you were reading it naturally. Return the tables in html format. Return the equations in LaTeX representation. If there is an image in the document and image caption is not present, add a small description of the image inside the <img></img> tag; otherwise, add the image caption inside <img></img>. Watermarks should be wrapped in brackets. Ex: <watermark>OFFICIAL COPY</watermark>. Page numbers should be wrapped in brackets. Ex: <page_number>14</page_number> or <page_number>9/22</page_number>. Prefer using ☐ and ☑ for check boxes."

# chandra/prompts.py, prompt_type ocr_layout, bbox_scale 1024 (datalab-to/chandra 0.1.9); double spaces are the original's
CHANDRA_OCR_LAYOUT = (
    "OCR this image to HTML, arranged as layout blocks.  Each layout block should be a div with the data-bbox attribute representing the bounding box of the block in [x0, y0, x1, y1] format.  Bboxes are normalized 0-1024. The data-label attribute is the label for the block.\n"
    "\n"
    "Use the following labels:\n"
    "- Caption\n"
    "- Footnote\n"
    "- Equation-Block\n"
    "- List-Group\n"
    "- Page-Header\n"
    "- Page-Footer\n"
    "- Image\n"
    "- Section-Header\n"
    "- Table\n"
    "- Text\n"
    "- Complex-Block\n"
    "- Code-Block\n"
    "- Form\n"
    "- Table-Of-Contents\n"
    "- Figure\n"
    "\n"
    "Only use these tags ['math', 'br', 'i', 'b', 'u', 'del', 'sup', 'sub', 'table', 'tr', 'td', 'p', 'th', 'div', 'pre', 'h1', 'h2', 'h3', 'h4', 'h5', 'ul', 'ol', 'li', 'input', 'a', 'span', 'img', 'hr', 'tbody', 'small', 'caption', 'strong', 'thead', 'big', 'code'], and these attributes ['class', 'colspan', 'rowspan', 'display', 'checked', 'type', 'border', 'value', 'style', 'href', 'alt', 'align'].\n"
    "\n"
    "Guidelines:\n"
    "* Inline math: Surround math with <math>...</math> tags. Math expressions should be rendered in KaTeX-compatible LaTeX. Use display for block math.\n"
    "* Tables: Use colspan and rowspan attributes to match table structure.\n"
    "* Formatting: Maintain consistent formatting with the image, including spacing, indentation, subscripts/superscripts, and special characters.\n"
    "* Images: Include a description of any images in the alt attribute of an <img> tag. Do not fill out the src property.\n"
    "* Forms: Mark checkboxes and radio buttons properly.\n"
    "* Text: join lines together properly into paragraphs using <p>...</p> tags.  Use <br> tags for line breaks within paragraphs, but only when absolutely necessary to maintain meaning.\n"
    "* Use the simplest possible HTML structure that accurately represents the content of the block.\n"
    "* Make sure the text is accurate and easy for a human to read and interpret.  Reading order should be correct and natural."
)

# olmocr/bench/prompts.py, template basic (allenai/olmocr): how olmOCR-Bench ran Qwen2.5-VL
OLMOCR_BENCH_BASIC = "Please provide a natural, plain text representation of the document, formatted in Markdown. Skip any headers and footers. For ALL mathematical expressions, use LaTeX notation with \\( and \\) for inline equations and \\[ and \\] for display equations. Convert any tables into Markdown format."

# olmocr/bench/prompts.py, template fullv3simple (allenai/olmocr); {width}/{height}: the rendered image in pixels
OLMOCR_BENCH_FULLV3SIMPLE = (
    "Attached is the image of one page of a PDF document.Just return the plain text representation of this document as if you were reading it naturally.\n"
    "Turn equations and math symbols into a LaTeX representation, make sure to use \\( and \\) as a delimiter for inline math, and \\[ and \\] for block math. Do NOT use ascii or unicode math symbols such as ∈ ∉ ⊂ ⊃ ⊆ ⊇ ∅ ∪ ∩ ∀ ∃ ¬, just use LaTeX syntax, ex  \\( \\in \\) \\( \\notin \\) etc. If you were going to surround a math expression in $ symbols, surround it with \\( \\) instead.\n"
    "Convert tables into HTML format. Keep the syntax simple, but use <th> for header rows, and use rowspan and colspans appropriately. Don't use <br> inside of table cells, just split that into new rows as needed. Do NOT use LaTeX or Markdown table syntax.\n"
    "Remove the headers and footers, but keep references and footnotes.\n"
    "Read any natural handwriting.\n"
    "If there are any figures or charts, label them with the following markdown syntax ![Alt text describing the contents of the figure](page_startx_starty_width_height.png)This is likely one page out of several in the document, so be sure to preserve any sentences that come from the previous page, or continue onto the next page, exactly as they are.\n"
    "If there is no text at all that you think you should read, you can output null.\n"
    "Do not hallucinate.\n"
    "Page width: {width}, Page height: {height}"
)

# dots_ocr/model/inference.py (rednote-hilab/dots.ocr): without it vLLM v1 inserts a newline before the prompt
DOTS_IMAGE_PREFIX = "<|img|><|imgpad|><|endofimg|>"

# DeepSeek-OCR-vllm/config.py (deepseek-ai/DeepSeek-OCR): the document prompt; chat mode has no <image> token
DEEPSEEK_GROUNDING = "<|grounding|>Convert the document to markdown."

# docling/datamodel/vlm_prompts.py::DOCLING_BASE_PAGE_PROMPT (docling-project/docling)
DOCLING_PAGE = "Convert this page to docling."

# mineru_vl_utils/mineru_client.py::DEFAULT_SYSTEM_PROMPT (opendatalab/mineru-vl-utils)
MINERU_SYSTEM = "You are a helpful assistant."

# olmocr/bench/runners/run_nanonetsocr_2.py (allenai/olmocr)
NANONETS_SYSTEM = "You are a helpful assistant."
