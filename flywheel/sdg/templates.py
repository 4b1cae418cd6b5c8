"""Chat prompts sent to the generator for single-turn synthetic prompt generation.

Follows the Nemotron-4 340B report, section 3.2.1 (synthetic single-turn prompts):

* open Q&A: macro topics -> subtopics -> questions per topic -> a refinement turn asking for a
  more detailed and specific question (first drafts tend to be short);
* writing: tasks per document type (newsletter, poem, essay, ...) and topic, also refined;
* closed Q&A: an instruction about a supplied document, then the document and instruction are
  joined with one of a few fixed templates into the final user prompt;
* math and Python: problems generated from keyword lists at varied difficulty levels.

Each builder returns the messages (``[{"role": "user", "content": ...}]``) for one generator
call; ``flywheel.sdg.parse`` reads the replies. Bad arguments raise ``FlywheelError``.
"""

from __future__ import annotations

import hashlib

from flywheel.errors import FlywheelError

Message = dict[str, str]

CLOSED_QA_TEMPLATES: tuple[str, ...] = (
    "{document}\n\n{instruction}",
    "{instruction}\n\n{document}",
    "Read the text below and respond to the request that follows it.\n\n"
    'Text:\n"""\n{document}\n"""\n\nRequest: {instruction}',
    "{instruction} Use only the information in this passage:\n\n{document}",
)


def user(content: str) -> list[Message]:
    """One user message as a chat prompt."""
    return [{"role": "user", "content": content}]


def _need_text(value: str, what: str, caller: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FlywheelError(f"{caller}: {what} must be a non-empty string, got {value!r:.60}")
    return value.strip()


def _need_count(n: int, caller: str) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise FlywheelError(f"{caller}: count must be a positive integer, got {n!r}")
    return n


_LIST_FORMAT = "Reply with a numbered list, one item per line, and nothing else."


def macro_topics_prompt(n: int) -> list[Message]:
    """Ask for ``n`` broad, diverse macro topics (parse with ``parse_list``)."""
    n = _need_count(n, "macro_topics_prompt")
    return user(
        f"List {n} broad and diverse topics that people ask an AI assistant about, covering "
        f"everyday life, the world, knowledge and work. {_LIST_FORMAT}"
    )


def subtopics_prompt(topic: str, n: int) -> list[Message]:
    """Ask for ``n`` distinct subtopics of ``topic`` (parse with ``parse_list``)."""
    topic = _need_text(topic, "topic", "subtopics_prompt")
    n = _need_count(n, "subtopics_prompt")
    return user(
        f'List {n} distinct subtopics of "{topic}". Each subtopic should be specific enough '
        f"to ask several questions about, and the subtopics should not overlap. {_LIST_FORMAT}"
    )


def questions_prompt(topic: str, n: int) -> list[Message]:
    """Ask for ``n`` open-ended questions about ``topic`` (parse with ``parse_list``)."""
    topic = _need_text(topic, "topic", "questions_prompt")
    n = _need_count(n, "questions_prompt")
    return user(
        f"Write {n} different questions that a curious person might ask an AI assistant about "
        f'"{topic}". Vary the kind of question: explanations, comparisons, advice, opinions '
        f"and how-to questions. Each question must make sense on its own. {_LIST_FORMAT}"
    )


def refine_question_prompt(question: str) -> list[Message]:
    """Ask to rewrite a question to be more detailed and specific (parse with ``parse_single``)."""
    question = _need_text(question, "question", "refine_question_prompt")
    return user(
        f"Here is a question:\n\n{question}\n\nRewrite it to be more detailed and specific: add "
        f"context about the asker's situation, constraints or goals so that a good answer has "
        f"to address them. Keep it a single question or request from the same person. Reply "
        f"with the rewritten question only."
    )


def writing_tasks_prompt(doc_type: str, topic: str, n: int) -> list[Message]:
    """Ask for ``n`` writing tasks producing a ``doc_type`` about ``topic`` (``parse_list``)."""
    doc_type = _need_text(doc_type, "doc_type", "writing_tasks_prompt")
    topic = _need_text(topic, "topic", "writing_tasks_prompt")
    n = _need_count(n, "writing_tasks_prompt")
    return user(
        f"Write {n} different requests that a user might give an AI assistant asking it to "
        f'write a {doc_type} related to "{topic}". Each request must be a complete '
        f"instruction in one sentence or two. {_LIST_FORMAT}"
    )


def refine_writing_prompt(task: str) -> list[Message]:
    """Ask to make a writing task more detailed (audience, tone, length, content points)."""
    task = _need_text(task, "task", "refine_writing_prompt")
    return user(
        f"Here is a writing request:\n\n{task}\n\nRewrite it to be more detailed and specific: "
        f"say who the audience is, the tone, roughly how long it should be and which points it "
        f"must cover. Reply with the rewritten request only."
    )


def clip_document(document: str, max_chars: int) -> str:
    """Shorten a document to at most ``max_chars``, cutting at a paragraph or sentence end.

    Args:
        document: source text.
        max_chars: length budget in characters (> 0).

    Returns:
        The stripped document if it fits, else its longest prefix ending at a blank line or
        sentence end within the budget (a hard cut if there is none in the second half).
    """
    if max_chars < 1:
        raise FlywheelError(f"clip_document: max_chars must be positive, got {max_chars}")
    document = document.strip()
    if len(document) <= max_chars:
        return document
    head = document[:max_chars]
    for boundary in ("\n\n", ". ", "? ", "! ", "\n"):
        cut = head.rfind(boundary)
        if cut >= max_chars // 2:
            return head[: cut + (1 if boundary.strip() else 0)].strip()
    return head.strip()


def closed_qa_instruction_prompt(document: str) -> list[Message]:
    """Ask for one instruction answerable from ``document`` alone (parse with ``parse_single``)."""
    document = _need_text(document, "document", "closed_qa_instruction_prompt")
    return user(
        f'Here is a document:\n\n"""\n{document}\n"""\n\nWrite one request that a user '
        f"could make about this document and that can be answered from the document alone, "
        f"for example a question about a fact or detail in it, a request to summarize it, or "
        f"a request to extract or rewrite part of it. Do not answer it. Reply with the request "
        f"only."
    )


def closed_qa_user_prompt(document: str, instruction: str, template: int | None = None) -> str:
    """Join a document and an instruction into the final closed Q&A user prompt.

    Args:
        document: the source document (already clipped).
        instruction: the parsed instruction about it.
        template: index into ``CLOSED_QA_TEMPLATES``; ``None`` picks one from a hash of the
            instruction so the choice is varied yet reproducible.

    Returns:
        The user message content.
    """
    document = _need_text(document, "document", "closed_qa_user_prompt")
    instruction = _need_text(instruction, "instruction", "closed_qa_user_prompt")
    if template is None:
        template = int(hashlib.sha1(instruction.encode("utf-8")).hexdigest(), 16)
        template %= len(CLOSED_QA_TEMPLATES)
    if not 0 <= template < len(CLOSED_QA_TEMPLATES):
        raise FlywheelError(f"closed_qa_user_prompt: no template {template}")
    return CLOSED_QA_TEMPLATES[template].format(document=document, instruction=instruction)


def math_problem_prompt(keyword: str, level: str) -> list[Message]:
    """Ask for one math problem about ``keyword`` at ``level`` (parse: ``parse_single``)."""
    keyword = _need_text(keyword, "keyword", "math_problem_prompt")
    level = _need_text(level, "level", "math_problem_prompt")
    return user(
        f"Write one self-contained math problem about {keyword} at the {level} level. It must "
        f"have a single, checkable final answer and include every number it needs. Do not "
        f"give the solution or the answer. Reply with the problem only."
    )


def code_problem_prompt(keyword: str, level: str) -> list[Message]:
    """Ask for one Python programming task using ``keyword`` at ``level`` (``parse_single``)."""
    keyword = _need_text(keyword, "keyword", "code_problem_prompt")
    level = _need_text(level, "level", "code_problem_prompt")
    return user(
        f"Write one self-contained Python programming task for a {level} programmer that "
        f"involves {keyword}. Describe the inputs, the expected output and one example. Do "
        f"not give the solution. Reply with the task only."
    )
