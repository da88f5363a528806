"""Causal language modelling (decoder LLMs): supervised fine-tuning on prompt -> response pairs, response-only loss.

The data are prompt/response pairs (JSONL), conversations (chat JSONL) or any labelled data set the project reads,
each example turned into an instruction prompt and its label's string as the response. The headline is the response
loss on validation (minimised); label-style data are also scored as classification, by ranking the label strings'
log-likelihoods (lm-evaluation-harness's way), so that an encoder and a decoder fine-tuned on the same split can stand
in one table.
"""

from __future__ import annotations

from omegaconf import DictConfig

from ftaudit.models.causal import load_causal_lm, load_causal_tokenizer
from ftaudit.models.finetuned import FineTunedModel
from ftaudit.probes.counterfactual_prompts import CounterfactualPromptProbe
from ftaudit.tasks.base import Task
from ftaudit.tasks.causal_lm.audit import load_audited_lm
from ftaudit.tasks.causal_lm.data import CausalLMDataModule
from ftaudit.tasks.causal_lm.fairness import task_prompts
from ftaudit.tasks.causal_lm.module import CausalLMModule
from ftaudit.tasks.causal_lm.predictions import predictions_tsv


class CausalLMTask(Task):
    name = "causal_lm"
    headline = "loss"
    head = "AutoModelForCausalLM"
    pipeline_tag = "text-generation"
    formats = {fmt: CausalLMDataModule for fmt in ("jsonl", "chat_jsonl", "phrasebank", "text_csv")}
    module_class = CausalLMModule
    # The response loss and its perplexity; label-style data: label ranking scored as classification, and the free
    # answers parsed to labels; free-text data: exact match of the free answer.
    scores = {
        "loss": "min",
        "perplexity": "min",
        "accuracy": "max",
        "f1_macro": "max",
        "f1_*": "max",
        "mcc": "max",
        "ece": "min",
        "generation_accuracy": "max",
        "generation_parsed": "max",
        "exact_match": "max",
    }
    summary = ("loss", "perplexity", "accuracy", "f1_macro", "ece", "generation_accuracy", "exact_match")

    def __init__(self, peft_task_type: str, prompting: DictConfig, max_new_tokens: int = 0, name: str | None = None):
        super().__init__(peft_task_type, name)
        self.prompting, self.max_new_tokens = prompting, max_new_tokens

    def data_options(self) -> dict:
        return {"prompting": self.prompting}

    def load_tokenizer(self, model_cfg: DictConfig):
        return load_causal_tokenizer(model_cfg)

    def load_model(self, model_cfg: DictConfig, data: CausalLMDataModule, attention: str | None):
        return load_causal_lm(model_cfg, attention)

    def load_audited(self, model_cfg: DictConfig, base_cfg: DictConfig, data: CausalLMDataModule) -> FineTunedModel:
        return load_audited_lm(model_cfg, base_cfg)

    def module(self, model, optimizer_cfg, data: CausalLMDataModule, **clipping) -> CausalLMModule:
        return CausalLMModule(model, optimizer_cfg, data, max_new_tokens=self.max_new_tokens, **clipping)

    def loading_snippet(self, labels: list[str], adapter: bool, base: str | None) -> str:
        load = (
            f'base = AutoModelForCausalLM.from_pretrained("{base}")\n'
            'model = PeftModel.from_pretrained(base, "path/to/this/folder")\n'
            if adapter
            else 'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")\n'
        )
        return (
            "```python\n"
            + ("from peft import PeftModel\n" if adapter else "")
            + "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            + 'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")\n'
            + load
            + 'messages = [{"role": "user", "content": "..."}]\n'
            + "prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)\n"
            + 'inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)\n'
            + "answer = model.generate(**inputs, max_new_tokens=32, do_sample=False)\n"
            + 'print(tokenizer.decode(answer[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))\n```'
        )

    def prediction_files(self, data: CausalLMDataModule, module: CausalLMModule) -> dict[str, str]:
        return {"predictions/test.tsv": predictions_tsv(data, module.test_predictions)}

    def fairness_probe(self, settings, groups, split, names_file, missing=None) -> CounterfactualPromptProbe:
        return CounterfactualPromptProbe(settings, groups, split, names_file, missing, prompt_source=task_prompts)
